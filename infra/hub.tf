# ---------------------------------------------------------------- an organization's hub
#
# Member accounts forward the events fleetguard handles to this bus (`modules/member`); the
# same rules as on the default bus feed the same functions, which act in the member through
# member_role_name. The bus admits only the listed accounts, or the organization's.

locals {
  hub_bus_name = "${var.name_prefix}-hub"
  hub_rules    = var.create && local.hub ? local.rules : {}
  # The members' sweep: each member's minute schedule, forwarded, runs asg-lifecycle's sweep
  # in that member.
  hub_sweep = var.create && local.hub && contains(local.functions, "asg-lifecycle")
}

# The same patterns, not narrowed by cluster ARN (a member's clusters are in its own account):
# the member's forwarding rules narrow them there.
module "hub_patterns" {
  source                   = "./modules/patterns"
  auto_scaling_group_names = var.auto_scaling_group_names
  lifecycle_hook_names     = local.hook_names
  rebalance_action         = var.rebalance_action
  report_task_failures     = var.report_task_failures
  alarm_name_prefixes      = length(var.alarm_name_prefixes) > 0 ? distinct(concat(var.alarm_name_prefixes, ["${var.name_prefix}-failed-events"])) : []
}

resource "aws_cloudwatch_event_bus" "hub" {
  count = var.create && local.hub ? 1 : 0
  name  = local.hub_bus_name
  tags  = var.tags
}

data "aws_iam_policy_document" "hub_bus" {
  count = length(aws_cloudwatch_event_bus.hub)
  dynamic "statement" {
    for_each = length(var.member_account_ids) > 0 ? [1] : []
    content {
      sid       = "Members"
      actions   = ["events:PutEvents"]
      resources = [aws_cloudwatch_event_bus.hub[0].arn]
      principals {
        type        = "AWS"
        identifiers = [for a in var.member_account_ids : "arn:${local.partition}:iam::${a}:root"]
      }
    }
  }
  dynamic "statement" {
    for_each = length(var.member_account_ids) == 0 ? [1] : []
    content {
      sid       = "Organization"
      actions   = ["events:PutEvents"]
      resources = [aws_cloudwatch_event_bus.hub[0].arn]
      principals {
        type        = "AWS"
        identifiers = ["*"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:PrincipalOrgID"
        values   = [var.organization_id]
      }
    }
  }
}

resource "aws_cloudwatch_event_bus_policy" "hub" {
  count          = length(aws_cloudwatch_event_bus.hub)
  event_bus_name = aws_cloudwatch_event_bus.hub[0].name
  policy         = data.aws_iam_policy_document.hub_bus[0].json
}

resource "aws_cloudwatch_event_rule" "hub" {
  for_each       = local.hub_rules
  name           = "${var.name_prefix}-hub-${replace(each.key, "_", "-")}"
  description    = "fleetguard hub: feeds ${each.value} with the members' events"
  event_bus_name = aws_cloudwatch_event_bus.hub[0].name
  event_pattern  = module.hub_patterns.patterns[each.key]
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "hub" {
  for_each       = local.hub_rules
  rule           = aws_cloudwatch_event_rule.hub[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.hub[0].name
  arn            = aws_lambda_function.function[each.value].arn
  retry_policy {
    maximum_event_age_in_seconds = local.rule_async[each.key].maximum_event_age_in_seconds
    maximum_retry_attempts       = 185
  }
  dead_letter_config {
    arn = aws_sqs_queue.failed_events[0].arn
  }
}

resource "aws_lambda_permission" "hub" {
  for_each      = local.hub_rules
  statement_id  = "eventbridge-hub-${replace(each.key, "_", "-")}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.value].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.hub[each.key].arn
}

resource "aws_cloudwatch_event_rule" "hub_sweep" {
  count          = local.hub_sweep ? 1 : 0
  name           = "${var.name_prefix}-hub-asg-lifecycle-sweep"
  description    = "fleetguard hub: each member's minute schedule runs the asg-lifecycle sweep there"
  event_bus_name = aws_cloudwatch_event_bus.hub[0].name
  event_pattern  = jsonencode({ source = ["aws.events"], "detail-type" = ["Scheduled Event"] })
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "hub_sweep" {
  count          = length(aws_cloudwatch_event_rule.hub_sweep)
  rule           = aws_cloudwatch_event_rule.hub_sweep[0].name
  event_bus_name = aws_cloudwatch_event_bus.hub[0].name
  arn            = aws_lambda_alias.sweep[0].arn
  retry_policy {
    maximum_event_age_in_seconds = 60
    maximum_retry_attempts       = 0
  }
  dead_letter_config {
    arn = aws_sqs_queue.failed_events[0].arn
  }
}

resource "aws_lambda_permission" "hub_sweep" {
  count         = length(aws_cloudwatch_event_rule.hub_sweep)
  statement_id  = "eventbridge-hub-sweep"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["asg-lifecycle"].function_name
  qualifier     = aws_lambda_alias.sweep[0].name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.hub_sweep[0].arn
}
