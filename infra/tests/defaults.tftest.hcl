# The module's defaults on any account, and what a stranger may set: reserved concurrency, KMS
# keys, group scope, the environment's size (Terraform >= 1.7, mock provider).

mock_provider "aws" {
  source = "./tests/mocks"
  override_data {
    target = data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
}

variables {
  zip_paths = {
    "spot-interruption"    = "tests/defaults.tftest.hcl"
    "asg-lifecycle"        = "tests/defaults.tftest.hcl"
    "ecs-deployment"       = "tests/defaults.tftest.hcl"
    "alarm-fanout"         = "tests/defaults.tftest.hcl"
    "instance-maintenance" = "tests/defaults.tftest.hcl"
  }
  ecs_cluster_names        = ["prod"]
  auto_scaling_group_names = ["workers"]
  create_lifecycle_hooks   = true
}

# A new account's concurrency quota may be 10, and Lambda keeps 100 unreserved: any reservation
# fails there at apply.
run "defaults_reserve_no_concurrency" {
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : f.reserved_concurrent_executions == -1])
    error_message = "no function reserves concurrency by default"
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : f.logging_config[0].system_log_level == "WARN"])
    error_message = "system_log_level defaults to WARN"
  }
}

run "reserved_concurrency_is_opt_in" {
  variables {
    reserved_concurrency = { "alarm-fanout" = 5 }
    system_log_level     = "INFO"
  }
  assert {
    condition     = aws_lambda_function.function["alarm-fanout"].reserved_concurrent_executions == 5 && aws_lambda_function.function["spot-interruption"].reserved_concurrent_executions == -1
    error_message = "only the functions named reserve, as much as named"
  }
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].logging_config[0].system_log_level == "INFO"
    error_message = "system_log_level is the input's"
  }
}

run "reserved_concurrency_of_zero_or_an_unknown_function_is_refused" {
  command = plan
  variables {
    reserved_concurrency = { "alarm-fanout" = 0, "alarm_fanout" = 5 }
  }
  expect_failures = [var.reserved_concurrency]
}

run "a_kms_alias_is_refused" {
  command = plan
  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:alias/fleetguard"
  }
  expect_failures = [var.kms_key_arn]
}

run "an_extra_kms_alias_is_refused" {
  command = plan
  variables {
    extra_kms_key_arns = ["alias/secrets"]
  }
  expect_failures = [var.extra_kms_key_arns]
}

run "every_key_is_granted" {
  variables {
    kms_key_arn        = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
    extra_kms_key_arns = ["arn:aws:kms:eu-west-1:444455556666:key/66666666-7777-8888-9999-000000000000"]
  }
  assert {
    condition = toset(one([for st in data.aws_iam_policy_document.function["alarm-fanout"].statement : st.resources if st.sid == "Kms"])) == toset([
      "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555",
      "arn:aws:kms:eu-west-1:444455556666:key/66666666-7777-8888-9999-000000000000",
    ])
    error_message = "the module's key and the extra keys are granted, and nothing else"
  }
}

run "every_function_that_acts_on_groups_has_the_same_scope" {
  variables {
    managed_asg_tag = "fleetguard=on"
  }
  assert {
    condition     = alltrue([for f in ["spot-interruption", "asg-lifecycle", "instance-maintenance"] : aws_lambda_function.function[f].environment[0].variables["AUTO_SCALING_GROUPS"] == "workers" && aws_lambda_function.function[f].environment[0].variables["MANAGED_ASG_TAG"] == "fleetguard=on"])
    error_message = "spot-interruption, asg-lifecycle and instance-maintenance get the same groups and tag"
  }
}

run "replace_is_scoped_to_the_named_groups" {
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["MAINTENANCE_ACTION"] == "replace"
    error_message = "replace is the default where groups are named"
  }
  assert {
    condition     = toset(one([for st in data.aws_iam_policy_document.function["instance-maintenance"].statement : st.resources if st.sid == "Replace"])) == toset(["arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:autoScalingGroupName/workers"])
    error_message = "TerminateInstanceInAutoScalingGroup only in the named groups"
  }
}

run "drain_is_granted_no_terminate" {
  variables {
    maintenance_action = "drain"
  }
  assert {
    condition     = length([for st in data.aws_iam_policy_document.function["instance-maintenance"].statement : st if st.sid == "Replace"]) == 0
    error_message = "TerminateInstanceInAutoScalingGroup only when instance-maintenance replaces"
  }
}

run "replace_by_tag_has_the_tag_condition" {
  variables {
    auto_scaling_group_names = []
    managed_asg_tag          = "fleetguard"
  }
  assert {
    condition     = one([for st in data.aws_iam_policy_document.function["instance-maintenance"].statement : [for c in st.condition : c.variable] if st.sid == "Replace"]) == ["aws:ResourceTag/fleetguard"]
    error_message = "without group names, TerminateInstanceInAutoScalingGroup only where the managed tag is"
  }
}

run "replace_with_no_known_group_drains_instead" {
  variables {
    auto_scaling_group_names = []
    create_lifecycle_hooks   = false
    functions                = { asg_lifecycle = false }
  }
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["MAINTENANCE_ACTION"] == "drain" && !contains(keys(aws_lambda_function.function["instance-maintenance"].environment[0].variables), "AUTO_SCALING_GROUPS")
    error_message = "with no group named nor tagged, instance-maintenance drains"
  }
  assert {
    condition     = length([for st in data.aws_iam_policy_document.function["instance-maintenance"].statement : st if st.sid == "Replace"]) == 0
    error_message = "and may terminate nothing through Auto Scaling"
  }
  expect_failures = [check.replace_scoped]
}

run "every_runtime_setting_has_an_input" {
  variables {
    pagerduty_events_url         = "https://events.eu.pagerduty.com/v2/enqueue"
    slack_api_url                = "https://slack-gov.com/api/"
    slack_max_attempts           = 3
    muted_alarms                 = "notify"
    suppressed_alarms            = "notify"
    service_alert_window_seconds = 600
    tls_roots                    = "system"
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : f.environment[0].variables["PAGERDUTY_EVENTS_URL"] == "https://events.eu.pagerduty.com/v2/enqueue" && f.environment[0].variables["SLACK_API_URL"] == "https://slack-gov.com/api/" && f.environment[0].variables["SLACK_MAX_ATTEMPTS"] == "3" && f.environment[0].variables["TLS_ROOTS"] == "system"])
    error_message = "every function gets the web settings"
  }
  assert {
    condition     = aws_lambda_function.function["alarm-fanout"].environment[0].variables["MUTED_ALARMS"] == "notify" && aws_lambda_function.function["alarm-fanout"].environment[0].variables["SUPPRESSED_ALARMS"] == "notify" && aws_lambda_function.function["ecs-deployment"].environment[0].variables["SERVICE_ALERT_WINDOW_SECONDS"] == "600"
    error_message = "alarm-fanout and ecs-deployment get theirs"
  }
}

# A route's storm settings are checked at plan, as the function checks them at init.
run "storm_settings_apply" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "az", storm = { sources = 20, window_seconds = 300, update_seconds = 60, pagerduty = "source", digest = true } }])
  }
}

run "storm_settings_out_of_range_are_refused" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "az", storm = { sources = 0 } }])
  }
  expect_failures = [var.notify_routes]
}

run "storm_settings_unknown_are_refused" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "az", storm = { threshold = 5 } }])
  }
  expect_failures = [var.notify_routes]
}

# Lambda's 4 KB is measured on the compact JSON of all the variables.
run "routes_within_the_limit_apply" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "many", match = { alarm_name_prefixes = [for i in range(300) : "a"] } }])
  }
}

run "routes_too_large_alone_are_refused" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "big", match = { alarm_name_prefixes = [for i in range(5) : join("", [for j in range(900) : "a"])] } }])
  }
  expect_failures = [aws_lambda_function.function]
}

# The routes alone are under 4 KB; with the other variables, over.
run "routes_over_with_the_other_variables_are_refused" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "big", match = { alarm_name_prefixes = [for i in range(4) : join("", [for j in range(900) : "a"])] } }])
  }
  expect_failures = [aws_lambda_function.function]
}

# Names and values come to less than 4 KB; written as JSON, the routes' quotes are escaped and
# the whole is over.
run "routes_over_only_as_json_are_refused" {
  command = plan
  variables {
    notify_routes = jsonencode([{ name = "quoted", match = { alarm_name_prefixes = [for i in range(700) : "a"] } }])
  }
  expect_failures = [aws_lambda_function.function]
}

# Topics and alarms created beside the module: their ARNs are unknown at plan, and the plan
# still works (for_each keys are positions, not ARNs).
run "arns_unknown_at_plan" {
  command = plan
  module {
    source = "./tests/fixtures/created_together"
  }
  variables {
    zip_path = "tests/defaults.tftest.hcl"
  }
  override_data {
    target = module.fleetguard.data.aws_caller_identity.current
    values = { account_id = "111122223333" }
  }
  override_data {
    target = module.fleetguard.data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
  override_data {
    target = module.fleetguard.data.aws_partition.current
    values = { partition = "aws" }
  }
}
