# An organization's hub: its bus admits only its members (or its organization), its functions
# may assume only the member role there, and standalone stays exactly as it was
# (Terraform >= 1.7, mock provider).

mock_provider "aws" {
  source = "./tests/mocks"
  override_data {
    target = data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "999999999999" }
  }
}

variables {
  zip_paths = {
    "spot-interruption"    = "tests/hub.tftest.hcl"
    "asg-lifecycle"        = "tests/hub.tftest.hcl"
    "ecs-deployment"       = "tests/hub.tftest.hcl"
    "alarm-fanout"         = "tests/hub.tftest.hcl"
    "instance-maintenance" = "tests/hub.tftest.hcl"
  }
  ecs_cluster_names        = ["workers"]
  auto_scaling_group_names = ["workers"]
  create_lifecycle_hooks   = true
}

run "standalone_has_no_bus_no_assume_and_no_hub_settings" {
  assert {
    condition     = length(aws_cloudwatch_event_bus.hub) == 0 && length(aws_cloudwatch_event_rule.hub) == 0
    error_message = "standalone: no hub bus, no hub rules"
  }
  assert {
    condition     = alltrue([for f, d in data.aws_iam_policy_document.function : length([for st in d.statement : st if st.sid == "AssumeMemberRole"]) == 0])
    error_message = "standalone: nothing assumes a member role"
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : !contains(keys(f.environment[0].variables), "HUB_ACCOUNT_ID") && !contains(keys(f.environment[0].variables), "MEMBER_ACCOUNTS")])
    error_message = "standalone: no hub settings"
  }
  assert {
    condition     = output.hub_event_bus_arn == null
    error_message = "standalone: no bus output"
  }
  assert {
    condition     = !strcontains(aws_cloudwatch_dashboard.fleet[0].dashboard_body, "Account")
    error_message = "standalone: the dashboard as it was"
  }
}

run "a_listed_hub_admits_and_assumes_only_its_members" {
  variables {
    member_account_ids = ["111111111111", "222222222222"]
    account_names      = { "111111111111" = "payments-prod" }
  }
  assert {
    condition     = aws_cloudwatch_event_bus.hub[0].name == "fleetguard-hub"
    error_message = "the hub's bus"
  }
  assert {
    condition     = jsonencode([for st in data.aws_iam_policy_document.hub_bus[0].statement : sort(flatten([for p in st.principals : tolist(p.identifiers)]))]) == jsonencode([["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]])
    error_message = "the bus admits the members only"
  }
  assert {
    condition = alltrue([for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "instance-maintenance"] :
      jsonencode(sort(tolist(one([for st in data.aws_iam_policy_document.function[f].statement : st.resources if st.sid == "AssumeMemberRole"])))) == jsonencode(["arn:aws:iam::111111111111:role/fleetguard-member", "arn:aws:iam::222222222222:role/fleetguard-member"])
    ])
    error_message = "the functions that act in members assume the member role there, and nowhere else"
  }
  assert {
    condition     = length([for st in data.aws_iam_policy_document.function["alarm-fanout"].statement : st if st.sid == "AssumeMemberRole"]) == 0
    error_message = "alarm-fanout acts in no member"
  }
  assert {
    condition = alltrue([for f in aws_lambda_function.function :
      f.environment[0].variables["MEMBER_ACCOUNTS"] == "111111111111,222222222222"
      && f.environment[0].variables["HUB_ACCOUNT_ID"] == "999999999999"
      && f.environment[0].variables["MEMBER_ROLE_NAME"] == "fleetguard-member"
      && jsondecode(f.environment[0].variables["ACCOUNT_NAMES"]) == { "111111111111" = "payments-prod" }
    ])
    error_message = "every function knows the hub's members and names"
  }
  assert {
    condition     = length(aws_cloudwatch_event_rule.hub) == length(aws_cloudwatch_event_rule.rule) && alltrue([for r in aws_cloudwatch_event_rule.hub : r.event_bus_name == "fleetguard-hub"])
    error_message = "every rule of the default bus has its twin on the hub's bus"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.hub_sweep[0].event_pattern) == { source = ["aws.events"], "detail-type" = ["Scheduled Event"] }
    error_message = "the members' forwarded schedules run the sweep"
  }
  assert {
    condition     = length(output.member_trust_role_arns) == 4
    error_message = "the member role trusts the four functions that act in members"
  }
  assert {
    condition     = length(jsondecode(aws_cloudwatch_dashboard.fleet[0].dashboard_body).widgets) == 12 && strcontains(aws_cloudwatch_dashboard.fleet[0].dashboard_body, ",Account}")
    error_message = "a hub's dashboard has the per-account views"
  }
}

run "an_organization_hub_admits_and_assumes_within_the_organization" {
  variables {
    organization_id = "o-abcdef1234"
  }
  assert {
    condition     = jsonencode([for st in data.aws_iam_policy_document.hub_bus[0].statement : [for c in st.condition : [c.variable, tolist(c.values)]]]) == jsonencode([[["aws:PrincipalOrgID", ["o-abcdef1234"]]]])
    error_message = "the bus admits the organization's accounts"
  }
  assert {
    condition     = jsonencode(one([for st in data.aws_iam_policy_document.function["spot-interruption"].statement : [for c in st.condition : [c.variable, tolist(c.values)]] if st.sid == "AssumeMemberRole"])) == jsonencode([["aws:ResourceOrgID", ["o-abcdef1234"]]])
    error_message = "the member role is assumed only within the organization"
  }
  assert {
    condition     = aws_lambda_function.function["asg-lifecycle"].environment[0].variables["ORGANIZATION_ID"] == "o-abcdef1234"
    error_message = "the functions know the organization"
  }
}

run "members_and_an_organization_together_are_refused" {
  command = plan
  variables {
    member_account_ids = ["111111111111"]
    organization_id    = "o-abcdef1234"
  }
  expect_failures = [aws_lambda_function.function]
}

run "a_bad_member_id_is_refused" {
  command = plan
  variables {
    member_account_ids = ["1111"]
  }
  expect_failures = [var.member_account_ids]
}

run "console_links_need_both_settings" {
  command = plan
  variables {
    console_shortcut_url = "https://d-1234567890.awsapps.com/start"
  }
  expect_failures = [aws_lambda_function.function]
}
