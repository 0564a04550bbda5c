# The module applied twice with one prefix, in two Regions of one account: no global name collides.

mock_provider "aws" {
  alias  = "ireland"
  source = "./tests/mocks"
  override_data {
    target = data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
}

mock_provider "aws" {
  alias  = "virginia"
  source = "./tests/mocks"
  override_data {
    target = data.aws_region.current
    values = { id = "us-east-1", name = "us-east-1" }
  }
}

variables {
  zip_paths                = { for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"] : f => "tests/module.tftest.hcl" }
  ecs_cluster_names        = ["prod"]
  auto_scaling_group_names = ["workers"]
  create_lifecycle_hooks   = true
}

run "ireland" {
  providers = {
    aws = aws.ireland
  }
}

run "virginia" {
  providers = {
    aws = aws.virginia
  }
  assert {
    condition     = length(setintersection([for r in run.ireland.role_names : r], [for r in values(aws_iam_role.function) : r.name])) == 0
    error_message = "role names (IAM is global) must differ between Regions"
  }
  assert {
    condition     = run.ireland.dashboard_name != aws_cloudwatch_dashboard.fleet[0].dashboard_name && aws_cloudwatch_dashboard.fleet[0].dashboard_name == "fleetguard-fleet-us-east-1"
    error_message = "dashboards are global to the account: each Region's has its own name"
  }
}
