# The rules that feed the functions on the default bus, the sweep, and alarm-fanout's other
# inputs (a hub's bus: hub.tf).

# ---------------------------------------------------------------- EventBridge

locals {
  # Without ECS, no ECS event is wanted: an unnarrowed rule would invoke asg-lifecycle for every
  # cluster's task and container-instance changes in the account.
  rules = {
    for k, target in module.patterns.targets : k => target
    if contains(local.functions, target) && (k != "alarm_fanout" || var.alarm_event_rule)
    && (local.uses_ecs || jsondecode(module.patterns.patterns[k]).source != ["aws.ecs"])
  }
  rule_async = { for k, f in local.rules : k => local.async[f] }
}

resource "aws_cloudwatch_event_rule" "rule" {
  for_each      = local.rules
  name          = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description   = "fleetguard: feeds ${each.value}"
  event_pattern = module.patterns.patterns[each.key]
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "rule" {
  for_each = local.rules
  rule     = aws_cloudwatch_event_rule.rule[each.key].name
  arn      = aws_lambda_function.function[each.value].arn
  retry_policy {
    maximum_event_age_in_seconds = local.rule_async[each.key].maximum_event_age_in_seconds
    maximum_retry_attempts       = 185
  }
  dead_letter_config {
    arn = aws_sqs_queue.failed_events[0].arn
  }
}

resource "aws_lambda_permission" "rule" {
  for_each      = local.rules
  statement_id  = "eventbridge-${replace(each.key, "_", "-")}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.value].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.rule[each.key].arn
}

# The lifecycle sweep: completes what events missed, heartbeats, enforces the drain budget.
resource "aws_cloudwatch_event_rule" "sweep" {
  count               = contains(local.functions, "asg-lifecycle") ? 1 : 0
  name                = "${var.name_prefix}-asg-lifecycle-sweep"
  description         = "fleetguard: the asg-lifecycle sweep, every minute"
  schedule_expression = "rate(1 minute)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "sweep" {
  count = length(aws_cloudwatch_event_rule.sweep)
  rule  = aws_cloudwatch_event_rule.sweep[0].name
  arn   = aws_lambda_alias.sweep[0].arn
  retry_policy {
    maximum_event_age_in_seconds = 60
    maximum_retry_attempts       = 0
  }
  dead_letter_config {
    arn = aws_sqs_queue.failed_events[0].arn
  }
}

resource "aws_lambda_permission" "sweep" {
  count         = length(aws_cloudwatch_event_rule.sweep)
  statement_id  = "eventbridge-sweep"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["asg-lifecycle"].function_name
  qualifier     = aws_lambda_alias.sweep[0].name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep[0].arn
}

# ---------------------------------------------------------------- alarm-fanout's other inputs

# SNS-wrapped alarms: the topics the user's alarms already notify.
# Keyed by position, not by ARN: an ARN of a topic created in the same apply is unknown at plan,
# and for_each keys must be known.
resource "aws_sns_topic_subscription" "alarms" {
  for_each  = contains(local.functions, "alarm-fanout") ? { for i, arn in var.alarm_sns_topic_arns : tostring(i) => arn } : {}
  topic_arn = each.value
  protocol  = "lambda"
  endpoint  = aws_lambda_function.function["alarm-fanout"].arn
}

resource "aws_lambda_permission" "alarm_topics" {
  for_each      = contains(local.functions, "alarm-fanout") ? { for i, arn in var.alarm_sns_topic_arns : tostring(i) => arn } : {}
  statement_id  = "sns-topic-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["alarm-fanout"].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = each.value
}

# Alarms that invoke alarm-fanout as their own alarm action.
resource "aws_lambda_permission" "alarm_actions" {
  for_each       = contains(local.functions, "alarm-fanout") ? { for i, arn in var.alarm_action_source_arns : tostring(i) => arn } : {}
  statement_id   = "alarm-action-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["alarm-fanout"].function_name
  principal      = "lambda.alarms.cloudwatch.amazonaws.com"
  source_arn     = each.value
  source_account = local.account
}
