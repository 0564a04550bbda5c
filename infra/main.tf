data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  enabled = {
    "spot-interruption" = var.functions.spot_interruption
    "asg-lifecycle"     = var.functions.asg_lifecycle
    "ecs-deployment"    = var.functions.ecs_deployment
    "alarm-fanout"      = var.functions.alarm_fanout
  }
  functions = toset([for name, on in local.enabled : name if on])

  default_timeouts = {
    "spot-interruption" = 60
    "asg-lifecycle"     = 120
    "ecs-deployment"    = 60
    "alarm-fanout"      = 30
  }

  cluster_arns = [for c in var.ecs_cluster_names : "arn:${local.partition}:ecs:${local.region}:${local.account}:cluster/${c}"]
  topic_arn    = var.sns_topic_arn != null ? var.sns_topic_arn : aws_sns_topic.notifications[0].arn
  topic_arns   = distinct(concat([local.topic_arn], var.extra_sns_topic_arns))
  secret_arns  = compact(concat([var.slack_webhook_secret_arn], var.extra_slack_webhook_secret_arns))

  managed_tag_key   = var.managed_asg_tag == null ? null : split("=", var.managed_asg_tag)[0]
  managed_tag_value = var.managed_asg_tag == null ? null : (length(split("=", var.managed_asg_tag)) > 1 ? join("=", slice(split("=", var.managed_asg_tag), 1, length(split("=", var.managed_asg_tag)))) : null)

  common_env = merge(
    {
      SNS_TOPIC_ARN     = local.topic_arn
      DRY_RUN           = tostring(var.dry_run)
      METRICS_NAMESPACE = var.name_prefix
    },
    var.slack_webhook_secret_arn == null ? {} : { SLACK_WEBHOOK_SECRET_ARN = var.slack_webhook_secret_arn },
    var.notify_routes == "" ? {} : { NOTIFY_ROUTES = var.notify_routes },
    var.create_dedupe_table ? { DEDUPE_TABLE = aws_dynamodb_table.dedupe[0].name } : {},
  )
  fleet_env = merge(
    length(var.ecs_cluster_names) > 0 ? { ECS_CLUSTERS = join(",", var.ecs_cluster_names) } : {},
    length(var.target_group_arns) > 0 ? { TARGET_GROUP_ARNS = join(",", var.target_group_arns) } : {},
    var.managed_asg_tag == null ? {} : { MANAGED_ASG_TAG = var.managed_asg_tag },
  )
  env = {
    "spot-interruption" = merge(local.common_env, local.fleet_env, { REBALANCE_ACTION = var.rebalance_action })
    "asg-lifecycle" = merge(local.common_env, local.fleet_env,
      length(var.auto_scaling_group_names) > 0 ? { AUTO_SCALING_GROUPS = join(",", var.auto_scaling_group_names) } : {},
      var.create_lifecycle_hooks ? { LIFECYCLE_HOOKS = join(",", [local.terminate_hook, local.launch_hook]) } : {},
      {
        MAX_DRAIN_SECONDS      = tostring(var.max_drain_seconds)
        DRAIN_TIMEOUT_RESULT   = var.drain_timeout_result
        LAUNCH_TIMEOUT_SECONDS = tostring(var.launch_timeout_seconds)
        LAUNCH_TIMEOUT_RESULT  = var.launch_timeout_result
        REBALANCE_UNDO_SECONDS = tostring(var.rebalance_undo_seconds)
    })
    "ecs-deployment" = merge(local.common_env, {
      REPORT_SUCCESS       = tostring(var.report_success)
      REPORT_TASK_FAILURES = tostring(var.report_task_failures)
    })
    "alarm-fanout" = local.common_env
  }

  terminate_hook = "${var.name_prefix}-drain"
  launch_hook    = "${var.name_prefix}-join"
}

module "patterns" {
  source                   = "./modules/patterns"
  ecs_cluster_arns         = local.cluster_arns
  auto_scaling_group_names = var.auto_scaling_group_names
  lifecycle_hook_names     = var.create_lifecycle_hooks ? [local.terminate_hook, local.launch_hook] : []
  rebalance_action         = var.rebalance_action
  report_task_failures     = var.report_task_failures
}

# ---------------------------------------------------------------- functions

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
  #checkov:skip=CKV_AWS_338:retention is the user's choice (log_retention_days, default 30 days); a year of Lambda logs is rarely wanted
  #checkov:skip=CKV_AWS_158:encrypted with kms_key_arn when given; CloudWatch Logs encrypts at rest otherwise
}

resource "aws_lambda_function" "function" {
  for_each         = local.functions
  function_name    = "${var.name_prefix}-${each.key}"
  description      = "fleetguard ${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = lookup(var.zip_paths, each.key, "${path.module}/../target/lambda/${each.key}/bootstrap.zip")
  source_code_hash = filebase64sha256(lookup(var.zip_paths, each.key, "${path.module}/../target/lambda/${each.key}/bootstrap.zip"))
  memory_size      = lookup(var.memory_mb, each.key, 128)
  timeout          = lookup(var.timeouts, each.key, local.default_timeouts[each.key])
  kms_key_arn      = var.kms_key_arn
  # A burst of alarms must not take the concurrency the drain functions need.
  reserved_concurrent_executions = each.key == "alarm-fanout" ? var.alarm_fanout_reserved_concurrency : -1

  environment {
    variables = local.env[each.key]
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "PassThrough"
  }

  tags = var.tags

  #checkov:skip=CKV_AWS_117:the functions call only public AWS APIs and Slack; a VPC would add NAT cost and cold-start time for nothing
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the user owns; the zips are built from source by `make build`
  #checkov:skip=CKV_AWS_116:async failures go to an on-failure destination (aws_lambda_function_event_invoke_config), which keeps the whole event and error, unlike a DLQ
  #checkov:skip=CKV_AWS_50:X-Ray is off (PassThrough): an SDK tracing layer would double the cold start; logs and EMF metrics carry the event id
  #checkov:skip=CKV_AWS_115:only alarm-fanout gets reserved concurrency; reserving it for the drain functions could throttle a mass Spot reclaim
  #checkov:skip=CKV_AWS_173:environment variables hold no secret (the webhook is read from Secrets Manager); encrypted with kms_key_arn when given
}

resource "aws_lambda_function_event_invoke_config" "function" {
  for_each                     = local.functions
  function_name                = aws_lambda_function.function[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_events.arn
    }
  }
}

# ---------------------------------------------------------------- failed events, notifications, dedupe

resource "aws_sqs_queue" "failed_events" {
  name                              = "${var.name_prefix}-failed-events"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "failed_events" {
  alarm_name          = "${var.name_prefix}-failed-events"
  alarm_description   = "fleetguard events that failed after Lambda's retries are waiting in ${aws_sqs_queue.failed_events.name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.failed_events.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic_arn]
  ok_actions          = [local.topic_arn]
  tags                = merge(var.tags, { severity = "high" })
}

resource "aws_sns_topic" "notifications" {
  count             = var.sns_topic_arn == null ? 1 : 0
  name              = "${var.name_prefix}-notifications"
  kms_master_key_id = var.kms_key_arn != null ? var.kms_key_arn : "alias/aws/sns"
  tags              = var.tags
}

resource "aws_dynamodb_table" "dedupe" {
  count        = var.create_dedupe_table ? 1 : 0
  name         = "${var.name_prefix}-dedupe"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
  point_in_time_recovery {
    enabled = true
  }
  tags = var.tags
  #checkov:skip=CKV_AWS_119:encrypted; with a customer key when kms_key_arn is given
}

# ---------------------------------------------------------------- EventBridge

locals {
  rules = { for k, target in module.patterns.targets : k => target if contains(local.functions, target) }
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
  arn   = aws_lambda_function.function["asg-lifecycle"].arn
}

resource "aws_lambda_permission" "sweep" {
  count         = length(aws_cloudwatch_event_rule.sweep)
  statement_id  = "eventbridge-sweep"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["asg-lifecycle"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep[0].arn
}

# ---------------------------------------------------------------- lifecycle hooks (optional)

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  for_each               = var.create_lifecycle_hooks ? toset(var.auto_scaling_group_names) : toset([])
  name                   = local.terminate_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  # If fleetguard is gone or failing, the instance still terminates when the heartbeat runs out.
  default_result        = "CONTINUE"
  notification_metadata = contains(keys(var.ecs_cluster_for_group), each.key) ? jsonencode({ ecs_cluster = var.ecs_cluster_for_group[each.key] }) : null
}

resource "aws_autoscaling_lifecycle_hook" "launch" {
  for_each               = var.create_lifecycle_hooks ? toset([for g in var.auto_scaling_group_names : g if contains(keys(var.ecs_cluster_for_group), g)]) : toset([])
  name                   = local.launch_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  default_result         = var.launch_timeout_result
  notification_metadata  = jsonencode({ ecs_cluster = var.ecs_cluster_for_group[each.key] })
}
