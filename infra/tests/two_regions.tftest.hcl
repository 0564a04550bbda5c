# The module applied twice with one prefix, in two Regions of one account: no global name collides.

mock_provider "aws" {
  alias = "ireland"
  # Mocked resources get ARNs of the right shape (the provider validates ARNs it is given).
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:111122223333:mock-topic" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:111122223333:mock-queue", url = "https://sqs.eu-west-1.amazonaws.com/111122223333/mock-queue" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:function:mock" }
  }
  mock_resource "aws_lambda_alias" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:function:mock:sweep" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:111122223333:log-group:mock" }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:111122223333:rule/mock" }
  }
  # Policy documents are rendered by the provider; a mock renders an empty one.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "111122223333" }
  }
  override_data {
    target = data.aws_region.current
    values = { id = "eu-west-1", name = "eu-west-1" }
  }
}

mock_provider "aws" {
  alias = "virginia"
  # Mocked resources get ARNs of the right shape (the provider validates ARNs it is given).
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:111122223333:mock-topic" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:111122223333:mock-queue", url = "https://sqs.eu-west-1.amazonaws.com/111122223333/mock-queue" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:function:mock" }
  }
  mock_resource "aws_lambda_alias" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:function:mock:sweep" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:111122223333:log-group:mock" }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:111122223333:rule/mock" }
  }
  # Policy documents are rendered by the provider; a mock renders an empty one.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "111122223333" }
  }
  override_data {
    target = data.aws_region.current
    values = { id = "us-east-1", name = "us-east-1" }
  }
}

variables {
  zip_paths                = { for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout"] : f => "tests/module.tftest.hcl" }
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
}
