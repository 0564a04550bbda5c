output "function_arns" {
  description = "Function name => ARN."
  value       = { for k, f in aws_lambda_function.function : k => f.arn }
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

output "failed_events_queue_url" {
  description = "The on-failure destination (DLQ) of every function."
  value       = aws_sqs_queue.failed_events.url
}

output "dedupe_table_name" {
  description = "The DynamoDB dedupe table, when created."
  value       = var.create_dedupe_table ? aws_dynamodb_table.dedupe[0].name : null
}

output "event_patterns" {
  description = "Rule => the event pattern it was created with."
  value       = module.patterns.patterns
}
