# The AWS provider as the module's tests mock it: one account, ARNs of the right shape, policy
# documents rendered empty. The Region is each test file's.

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
  target = data.aws_partition.current
  values = { partition = "aws" }
}
