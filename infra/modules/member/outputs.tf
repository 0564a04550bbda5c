output "member_role_arn" {
  description = "The role the hub assumes in this account."
  value       = try(aws_iam_role.member[0].arn, "arn:${local.partition}:iam::${local.account}:role/${var.member_role_name}")
}

output "forwarding_rule_arns" {
  description = "Rule => ARN of each rule forwarding to the hub (the sweep's schedule included)."
  value = merge(
    { for k, r in aws_cloudwatch_event_rule.forward : k => r.arn },
    { for r in aws_cloudwatch_event_rule.sweep : "sweep" => r.arn },
  )
}
