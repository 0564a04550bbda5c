output "function_arns" {
  description = "Function name => ARN."
  value       = { for k, f in aws_lambda_function.function : k => f.arn }
}

output "function_names" {
  description = "Function name => deployed Lambda function name."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "role_arns" {
  description = "Function name => the ARN of the role it runs with (the module's, or yours from function_role_arns)."
  value       = local.role_arns
}

output "role_names" {
  description = "Function name => name of the role the module created for it (none for roles you brought)."
  value       = { for k, r in aws_iam_role.function : k => r.name }
}

output "log_group_names" {
  description = "Function name => its CloudWatch Logs group."
  value       = { for k, g in aws_cloudwatch_log_group.function : k => g.name }
}

output "rule_arns" {
  description = "Rule => ARN (the sweep schedule included)."
  value = merge(
    { for k, r in aws_cloudwatch_event_rule.rule : k => r.arn },
    { for r in aws_cloudwatch_event_rule.sweep : "asg_lifecycle_sweep" => r.arn },
  )
}

output "sns_topic_arn" {
  description = "The notification topic."
  value       = local.topic_arn
}

output "sns_topic_kms_key_arn" {
  description = "The KMS key of the module's topic (its own key, or kms_key_arn), null for a topic you brought."
  value       = var.sns_topic_arn == null ? local.topic_key_arn : null
}

output "failed_events_queue_url" {
  description = "The on-failure destination of every function and the dead-letter queue of every rule."
  value       = try(aws_sqs_queue.failed_events[0].url, null)
}

output "failed_events_queue_arn" {
  description = "ARN of the failed-events queue."
  value       = try(aws_sqs_queue.failed_events[0].arn, null)
}

output "failed_events_alarm_arn" {
  description = "The alarm on the failed-events queue (it notifies sns_topic_arn)."
  value       = try(aws_cloudwatch_metric_alarm.failed_events[0].arn, null)
}

output "dedupe_table_name" {
  description = "The DynamoDB dedupe table, when created."
  value       = try(aws_dynamodb_table.dedupe[0].name, null)
}

output "lifecycle_hook_names" {
  description = "The hooks asg-lifecycle completes (its LIFECYCLE_HOOKS): the module's and lifecycle_hook_names."
  value       = local.hook_names
}

output "event_patterns" {
  description = "Rule => the event pattern it was created with."
  value       = module.patterns.patterns
}

output "policy_documents" {
  description = "Function name => the policy the module attaches to its role (JSON): what a role of your own (function_role_arns) needs."
  value       = { for k, d in data.aws_iam_policy_document.function : k => d.json }
}

output "dashboard_name" {
  description = "The fleet dashboard (create_dashboard), null without it."
  value       = try(aws_cloudwatch_dashboard.fleet[0].dashboard_name, null)
}

output "dashboard_url" {
  description = "The fleet dashboard in the CloudWatch console."
  value       = try("https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.fleet[0].dashboard_name}", null)
}

output "scheduler_role_arn" {
  description = "The role EventBridge Scheduler assumes to invoke instance-maintenance, null without that function."
  value       = try(aws_iam_role.scheduler[0].arn, null)
}

output "schedule_group_name" {
  description = "The EventBridge Scheduler group holding instance-maintenance's one-time schedules."
  value       = try(aws_scheduler_schedule_group.maintenance[0].name, null)
}

output "hub_event_bus_arn" {
  description = "A hub's event bus, where its members forward their events (modules/member's hub_event_bus_arn); null when standalone."
  value       = try(aws_cloudwatch_event_bus.hub[0].arn, null)
}

output "member_trust_role_arns" {
  description = "The roles of the functions that act in member accounts: the member role trusts these (modules/member's hub_role_arns)."
  value       = [for f in local.member_actors : local.role_arns[f] if contains(local.functions, f)]
}
