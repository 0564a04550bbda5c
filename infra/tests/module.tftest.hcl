# Checks of the module's safety defaults and preconditions (Terraform >= 1.7, no AWS:
# a mock provider, with the account and Region fixed). `make test` runs them (tests/tests/infra.rs).

mock_provider "aws" {
  source = "./tests/mocks"
  override_data {
    target = data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
}

variables {
  # Any file stands in for the zips at plan time.
  zip_paths = {
    "spot-interruption"    = "tests/module.tftest.hcl"
    "asg-lifecycle"        = "tests/module.tftest.hcl"
    "ecs-deployment"       = "tests/module.tftest.hcl"
    "alarm-fanout"         = "tests/module.tftest.hcl"
    "instance-maintenance" = "tests/module.tftest.hcl"
  }
  ecs_cluster_names        = ["prod"]
  auto_scaling_group_names = ["workers"]
  create_lifecycle_hooks   = true
  ecs_cluster_for_group    = { workers = "arn:aws:ecs:eu-west-1:111122223333:cluster/gpu" }
}

run "hooks_default_to_continue" {
  assert {
    condition     = aws_autoscaling_lifecycle_hook.launch["workers"].default_result == "CONTINUE"
    error_message = "a launch hook must continue when fleetguard is down, or every scale-out is abandoned"
  }
  assert {
    condition     = aws_autoscaling_lifecycle_hook.terminate["workers"].default_result == "CONTINUE"
    error_message = "the terminate hook must continue when fleetguard is down"
  }
}

run "hooks_are_known_to_asg_lifecycle" {
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].environment[0].variables["LIFECYCLE_HOOKS"] == "fleetguard-drain,fleetguard-join"
    error_message = "LIFECYCLE_HOOKS must name the module's hooks"
  }
}

run "own_hooks_are_named" {
  variables {
    create_lifecycle_hooks = false
    lifecycle_hook_names   = ["team-drain"]
  }
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].environment[0].variables["LIFECYCLE_HOOKS"] == "team-drain"
    error_message = "LIFECYCLE_HOOKS must name the user's hooks"
  }
  assert {
    condition     = length(aws_autoscaling_lifecycle_hook.terminate) == 0
    error_message = "no hooks are created"
  }
}

run "no_known_hooks_is_refused" {
  command = plan
  variables {
    create_lifecycle_hooks = false
  }
  expect_failures = [aws_lambda_function.function]
}

run "every_group_is_refused" {
  command = plan
  variables {
    auto_scaling_group_names = []
  }
  expect_failures = [aws_lambda_function.function, check.replace_scoped]
}

run "hooks_with_dry_run_are_refused" {
  command = plan
  variables {
    dry_run = true
  }
  expect_failures = [aws_autoscaling_lifecycle_hook.terminate]
}

run "hooks_without_asg_lifecycle_are_refused" {
  command = plan
  variables {
    functions = { asg_lifecycle = false }
  }
  expect_failures = [aws_autoscaling_lifecycle_hook.terminate]
}

run "drain_budget_within_the_hook_limit" {
  command = plan
  variables {
    lifecycle_hook_heartbeat_timeout = 600
    max_drain_seconds                = 70000 # > 100 × 600
  }
  expect_failures = [aws_autoscaling_lifecycle_hook.terminate]
}

run "heartbeat_timeout_too_short_for_a_missed_sweep" {
  command = plan
  variables {
    lifecycle_hook_heartbeat_timeout = 300
  }
  expect_failures = [var.lifecycle_hook_heartbeat_timeout]
}

run "group_clusters_join_the_cluster_list" {
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].environment[0].variables["ECS_CLUSTERS"] == "prod,gpu"
    error_message = "the cluster of ecs_cluster_for_group (given as an ARN) must be in ECS_CLUSTERS by name"
  }
  assert {
    condition     = jsondecode(module.patterns.patterns["asg_lifecycle_container_instance"]).detail.clusterArn == ["arn:aws:ecs:eu-west-1:111122223333:cluster/prod", "arn:aws:ecs:eu-west-1:111122223333:cluster/gpu"]
    error_message = "the group's cluster must be in the event patterns, as an ARN"
  }
  assert {
    condition     = aws_autoscaling_lifecycle_hook.launch["workers"].notification_metadata == jsonencode({ ecs_cluster = "gpu" })
    error_message = "the launch hook names the cluster"
  }
}

run "no_clusters_means_no_ecs" {
  variables {
    ecs_cluster_names     = []
    ecs_cluster_for_group = {}
    functions             = { ecs_deployment = false }
  }
  assert {
    condition     = aws_lambda_function.function["spot-interruption"].environment[0].variables["ECS_CLUSTERS"] == "none"
    error_message = "no cluster named: no ECS"
  }
  assert {
    condition     = !contains(keys(aws_cloudwatch_event_rule.rule), "asg_lifecycle_task_stopped") && !contains(keys(aws_cloudwatch_event_rule.rule), "asg_lifecycle_container_instance")
    error_message = "no cluster named: no rule takes ECS events (unnarrowed, they would be every cluster's)"
  }
  assert {
    condition     = contains(keys(aws_cloudwatch_event_rule.rule), "asg_lifecycle_action")
    error_message = "the lifecycle rule stays"
  }
}

run "ecs_deployment_needs_clusters" {
  command = plan
  variables {
    ecs_cluster_names     = []
    ecs_cluster_for_group = {}
  }
  expect_failures = [aws_lambda_function.function]
}

run "a_package_is_required" {
  command = plan
  variables {
    zip_paths = {}
  }
  expect_failures = [aws_lambda_function.function]
}

run "packages_from_s3" {
  variables {
    zip_paths = {}
    s3_bucket = "artifacts"
    s3_keys = {
      "spot-interruption"    = "fleetguard/1.2.0/spot-interruption.zip"
      "asg-lifecycle"        = "fleetguard/1.2.0/asg-lifecycle.zip"
      "ecs-deployment"       = "fleetguard/1.2.0/ecs-deployment.zip"
      "alarm-fanout"         = "fleetguard/1.2.0/alarm-fanout.zip"
      "instance-maintenance" = "fleetguard/1.2.0/instance-maintenance.zip"
    }
  }
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].s3_key == "fleetguard/1.2.0/asg-lifecycle.zip" && aws_lambda_function.function["asg-lifecycle"].filename == null
    error_message = "the zip comes from S3"
  }
}

run "the_topic_key_lets_cloudwatch_publish" {
  assert {
    condition     = aws_sns_topic.notifications[0].kms_master_key_id == aws_kms_key.notifications[0].arn
    error_message = "the module's topic is encrypted with its own key, not alias/aws/sns"
  }
  assert {
    condition     = length(aws_kms_key.notifications) == 1
    error_message = "the module's topic needs a key CloudWatch alarms may use, not alias/aws/sns"
  }
  assert {
    condition     = contains(flatten([for st in data.aws_iam_policy_document.notifications_key[0].statement : [for p in st.principals : tolist(p.identifiers)]]), "cloudwatch.amazonaws.com")
    error_message = "the key policy lets cloudwatch.amazonaws.com use the key"
  }
}

run "retries_and_ages_per_function" {
  assert {
    condition     = aws_lambda_function_event_invoke_config.function["spot-interruption"].maximum_event_age_in_seconds == 300
    error_message = "a Spot warning is stale after minutes"
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.sweep[0].maximum_retry_attempts == 0
    error_message = "a failed sweep is not retried into the next minute's"
  }
  assert {
    condition     = aws_cloudwatch_event_target.sweep[0].retry_policy[0].maximum_retry_attempts == 0
    error_message = "EventBridge does not retry the sweep either"
  }
}

run "longest_prefix_names_fit" {
  variables {
    name_prefix = "abcdefghijklmnopqrstuvwx" # 24, the longest allowed
  }
  assert {
    condition     = alltrue([for r in aws_cloudwatch_event_rule.rule : length(r.name) <= 64])
    error_message = "rule names are at most 64 characters"
  }
  assert {
    condition     = alltrue([for r in aws_iam_role.function : length(r.name) <= 64])
    error_message = "role names are at most 64 characters"
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : length(f.function_name) <= 64])
    error_message = "function names are at most 64 characters"
  }
}

run "a_longer_prefix_is_refused" {
  command = plan
  variables {
    name_prefix = "abcdefghijklmnopqrstuvwxy" # 25
  }
  expect_failures = [var.name_prefix]
}

run "nothing_when_not_created" {
  variables {
    create = false
  }
  assert {
    condition     = length(aws_lambda_function.function) == 0 && length(aws_sqs_queue.failed_events) == 0 && length(aws_sns_topic.notifications) == 0
    error_message = "create = false creates nothing"
  }
}

run "rules_keep_what_they_cannot_deliver" {
  assert {
    condition     = alltrue([for t in aws_cloudwatch_event_target.rule : t.dead_letter_config[0].arn == aws_sqs_queue.failed_events[0].arn])
    error_message = "every rule's target has the failed-events queue as its dead-letter queue"
  }
  assert {
    condition     = aws_cloudwatch_event_target.rule["spot_interruption"].retry_policy[0].maximum_event_age_in_seconds == 300
    error_message = "EventBridge stops retrying a Spot warning when Lambda would"
  }
}

run "alarm_inputs" {
  variables {
    alarm_name_prefixes      = ["shop-"]
    alarm_sns_topic_arns     = ["arn:aws:sns:eu-west-1:111122223333:shop-alarms"]
    alarm_action_source_arns = ["arn:aws:cloudwatch:eu-west-1:111122223333:alarm:shop-*"]
  }
  assert {
    condition     = jsondecode(module.patterns.patterns["alarm_fanout"]).detail.alarmName == [{ prefix = "shop-" }, { prefix = "fleetguard-failed-events" }]
    error_message = "the alarm rule takes the named alarms and the module's own"
  }
  assert {
    condition     = aws_sns_topic_subscription.alarms["0"].topic_arn == "arn:aws:sns:eu-west-1:111122223333:shop-alarms" && aws_sns_topic_subscription.alarms["0"].protocol == "lambda" && aws_lambda_permission.alarm_topics["0"].principal == "sns.amazonaws.com" && aws_lambda_permission.alarm_topics["0"].source_arn == "arn:aws:sns:eu-west-1:111122223333:shop-alarms"
    error_message = "alarm-fanout is subscribed to the alarm topic and may be invoked by it"
  }
  assert {
    condition     = aws_lambda_permission.alarm_actions["0"].principal == "lambda.alarms.cloudwatch.amazonaws.com" && aws_lambda_permission.alarm_actions["0"].source_arn == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:shop-*"
    error_message = "the named alarms may invoke alarm-fanout as their action"
  }
}

run "roles_of_your_own_and_a_boundary" {
  variables {
    function_role_arns       = { "alarm-fanout" = "arn:aws:iam::111122223333:role/platform-alarm-fanout" }
    permissions_boundary_arn = "arn:aws:iam::111122223333:policy/platform-boundary"
  }
  assert {
    condition     = aws_lambda_function.function["alarm-fanout"].role == "arn:aws:iam::111122223333:role/platform-alarm-fanout" && !contains(keys(aws_iam_role.function), "alarm-fanout") && !contains(keys(aws_iam_role_policy.function), "alarm-fanout")
    error_message = "a function with a role of its own gets no role or policy from the module"
  }
  assert {
    condition     = alltrue([for r in aws_iam_role.function : r.permissions_boundary == "arn:aws:iam::111122223333:policy/platform-boundary"])
    error_message = "every role the module creates has the boundary"
  }
  assert {
    condition     = contains(keys(output.policy_documents), "alarm-fanout")
    error_message = "the policy a role of your own needs is an output"
  }
}

run "maintenance_schedules_invoke_the_function_through_the_scheduler_role" {
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["SCHEDULE_TARGET_ARN"] == "arn:aws:lambda:eu-west-1:111122223333:function:fleetguard-instance-maintenance"
    error_message = "the schedules target the function by the ARN it is created with"
  }
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["SCHEDULER_ROLE_ARN"] == "arn:aws:iam::111122223333:role/fleetguard-scheduler-eu-west-1"
    error_message = "SCHEDULER_ROLE_ARN names the role the module creates"
  }
  assert {
    condition     = aws_iam_role.scheduler[0].name == "fleetguard-scheduler-eu-west-1"
    error_message = "the scheduler role is the one SCHEDULER_ROLE_ARN names (its policies are checked by tests/tests/infra.rs)"
  }
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["SCHEDULE_GROUP"] == aws_scheduler_schedule_group.maintenance[0].name
    error_message = "the function writes its schedules into the module's group"
  }
  assert {
    condition     = aws_lambda_function.function["instance-maintenance"].environment[0].variables["MAINTENANCE_ACTION"] == "replace" && aws_lambda_function.function["instance-maintenance"].environment[0].variables["MAINTENANCE_LEAD_SECONDS"] == "1800"
    error_message = "replace and 30 minutes are the defaults"
  }
  assert {
    condition     = length(aws_cloudwatch_dashboard.fleet) == 1 && strcontains(aws_cloudwatch_dashboard.fleet[0].dashboard_body, "SEARCH('{fleetguard,InstanceType,AvailabilityZone,AutoScalingGroup}")
    error_message = "the dashboard is on by default and reads the functions' namespace"
  }
}

run "without_instance_maintenance_no_scheduler" {
  variables {
    functions        = { instance_maintenance = false }
    create_dashboard = false
  }
  assert {
    condition     = length(aws_iam_role.scheduler) == 0 && length(aws_scheduler_schedule_group.maintenance) == 0 && length(aws_cloudwatch_dashboard.fleet) == 0
    error_message = "no scheduler role, group or dashboard when they are not wanted"
  }
}

run "slack_web_api_pagerduty_and_teams_secrets_are_granted_and_nothing_else" {
  variables {
    slack_bot_token_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetguard/slack-bot-AbCdEf"
    slack_channel              = "#fleet-ops"
    notify_routes = jsonencode([{
      name                              = "payments"
      match                             = { tags = { team = "payments" } }
      slack_channels                    = ["#payments-oncall"]
      pagerduty_routing_key_secret_arns = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-payments-123456", "pd-oncall"]
      teams_webhook_secret_arns         = ["teams/payments"]
      sns_topic_arns                    = ["arn:aws:sns:eu-west-1:111122223333:payments"]
      mention                           = "<!subteam^S0123ABCD>"
    }])
  }
  assert {
    condition     = aws_lambda_function.function["alarm-fanout"].environment[0].variables["SLACK_BOT_TOKEN_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetguard/slack-bot-AbCdEf" && aws_lambda_function.function["asg-lifecycle"].environment[0].variables["SLACK_CHANNEL"] == "#fleet-ops"
    error_message = "every function gets the bot token's secret and the default channel"
  }
  assert {
    condition = toset(one([for st in data.aws_iam_policy_document.function["alarm-fanout"].statement : st.resources if st.sid == "NotifySecrets"])) == toset([
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetguard/slack-bot-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:fleetguard/slack-bot-AbCdEf-??????",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-payments-123456",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-payments-123456-??????",
      # A name that ends like a random suffix is still a name: its ARN has one more.
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-oncall",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pd-oncall-??????",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:teams/payments",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:teams/payments-??????",
    ])
    error_message = "exactly the secrets the module was given and the routes name are readable, by full or partial ARN"
  }
  assert {
    condition     = contains(one([for st in data.aws_iam_policy_document.function["alarm-fanout"].statement : st.resources if st.sid == "Notify"]), "arn:aws:sns:eu-west-1:111122223333:payments")
    error_message = "the routes' topics may be published to"
  }
}

run "a_channel_without_a_bot_token_is_refused" {
  command = plan
  variables {
    slack_channel = "#fleet-ops"
  }
  expect_failures = [aws_lambda_function.function]
}
