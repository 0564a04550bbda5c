data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id # `id`, not `name`: `name` is deprecated in provider v6
  partition = data.aws_partition.current.partition

  enabled = {
    "spot-interruption"    = var.functions.spot_interruption
    "asg-lifecycle"        = var.functions.asg_lifecycle
    "ecs-deployment"       = var.functions.ecs_deployment
    "alarm-fanout"         = var.functions.alarm_fanout
    "instance-maintenance" = var.functions.instance_maintenance
  }
  functions = var.create ? toset([for name, on in local.enabled : name if on]) : toset([])
  # Functions whose role the module creates (the rest bring their own).
  own_roles = toset([for f in local.functions : f if !contains(keys(var.function_role_arns), f)])
  role_arns = { for f in local.functions : f => contains(keys(var.function_role_arns), f) ? var.function_role_arns[f] : aws_iam_role.function[f].arn }

  default_timeouts = {
    "spot-interruption"    = 60
    "asg-lifecycle"        = 120
    "ecs-deployment"       = 60
    "alarm-fanout"         = 30
    "instance-maintenance" = 60
  }
  # Lambda's asynchronous retries and event age per function: a Spot warning is useless after a
  # few minutes; a failed sweep is done again by the next minute's, never retried into it.
  default_async = {
    "spot-interruption"    = { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 300 }
    "asg-lifecycle"        = { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 3600 }
    "asg-lifecycle-sweep"  = { maximum_retry_attempts = 0, maximum_event_age_in_seconds = 60 }
    "ecs-deployment"       = { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 3600 }
    "alarm-fanout"         = { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 3600 }
    "instance-maintenance" = { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 3600 }
  }
  async = merge(local.default_async, var.async_invoke)

  # Clusters by name (an ARN's last segment): ecs_cluster_names and the clusters launch hooks wait on.
  group_cluster = { for g, c in var.ecs_cluster_for_group : g => reverse(split("/", c))[0] }
  cluster_names = distinct(concat([for c in var.ecs_cluster_names : reverse(split("/", c))[0]], values(local.group_cluster)))
  all_clusters  = contains(local.cluster_names, "*")
  uses_ecs      = length(local.cluster_names) > 0
  cluster_arns  = local.all_clusters ? [] : [for c in local.cluster_names : "arn:${local.partition}:ecs:${local.region}:${local.account}:cluster/${c}"]

  topic_key_arn = var.kms_key_arn != null ? var.kms_key_arn : (var.create && var.sns_topic_arn == null ? aws_kms_key.notifications[0].arn : null)
  topic_arn     = var.sns_topic_arn != null ? var.sns_topic_arn : (var.create ? aws_sns_topic.notifications[0].arn : null)
  topic_arns    = compact(distinct(concat([local.topic_arn], var.extra_sns_topic_arns, local.route_topics)))
  # What the routes name is granted as named: their topics, and every secret they read (Slack and
  # Teams webhooks, PagerDuty routing keys); a secret given by name is granted in this account
  # and Region.
  routes         = jsondecode(var.notify_routes == "" ? "[]" : var.notify_routes)
  route_topics   = flatten([for r in local.routes : try(r.sns_topic_arns, [])])
  route_secrets  = flatten([for r in local.routes : concat(try(r.slack_webhook_secret_arns, []), try(r.pagerduty_routing_key_secret_arns, []), try(r.teams_webhook_secret_arns, []))])
  route_channels = flatten([for r in local.routes : try(r.slack_channels, [])])
  secret_arns = distinct(compact(concat(
    [var.slack_webhook_secret_arn, var.slack_bot_token_secret_arn],
    var.extra_slack_webhook_secret_arns,
    [for s in local.route_secrets : startswith(s, "arn:") ? s : "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${s}"],
  )))

  managed_tag_key   = var.managed_asg_tag == null ? null : split("=", var.managed_asg_tag)[0]
  managed_tag_value = var.managed_asg_tag == null ? null : (length(split("=", var.managed_asg_tag)) > 1 ? join("=", slice(split("=", var.managed_asg_tag), 1, length(split("=", var.managed_asg_tag)))) : null)

  terminate_hook = "${var.name_prefix}-drain"
  launch_hook    = "${var.name_prefix}-join"
  created_hooks  = var.create_lifecycle_hooks ? concat([local.terminate_hook], length(var.ecs_cluster_for_group) > 0 ? [local.launch_hook] : []) : []
  hook_names     = distinct(concat(local.created_hooks, var.lifecycle_hook_names))

  # A hub: forwarded events of its members are acted on in them (`modules/member`).
  hub = length(var.member_account_ids) > 0 || var.organization_id != null

  common_env = merge(
    {
      DRY_RUN           = tostring(var.dry_run)
      METRICS_NAMESPACE = var.name_prefix
    },
    !local.hub ? {} : merge(
      { HUB_ACCOUNT_ID = local.account, MEMBER_ROLE_NAME = var.member_role_name },
      length(var.member_account_ids) > 0 ? { MEMBER_ACCOUNTS = join(",", var.member_account_ids) } : { ORGANIZATION_ID = var.organization_id },
    ),
    length(var.account_names) == 0 ? {} : { ACCOUNT_NAMES = jsonencode(var.account_names) },
    var.console_shortcut_url == null ? {} : { CONSOLE_SHORTCUT_URL = var.console_shortcut_url },
    var.console_role_name == null ? {} : { CONSOLE_ROLE_NAME = var.console_role_name },
    var.notify_routes == "" ? {} : { NOTIFY_ROUTES = var.notify_routes },
    local.topic_arn == null ? {} : { SNS_TOPIC_ARN = local.topic_arn },
    var.slack_webhook_secret_arn == null ? {} : { SLACK_WEBHOOK_SECRET_ARN = var.slack_webhook_secret_arn },
    var.slack_bot_token_secret_arn == null ? {} : { SLACK_BOT_TOKEN_SECRET_ARN = var.slack_bot_token_secret_arn },
    var.slack_channel == null ? {} : { SLACK_CHANNEL = var.slack_channel },
    var.create && var.create_dedupe_table ? { DEDUPE_TABLE = aws_dynamodb_table.dedupe[0].name } : {},
    var.pagerduty_events_url == null ? {} : { PAGERDUTY_EVENTS_URL = var.pagerduty_events_url },
    var.slack_api_url == null ? {} : { SLACK_API_URL = var.slack_api_url },
    var.slack_max_attempts == null ? {} : { SLACK_MAX_ATTEMPTS = tostring(var.slack_max_attempts) },
    var.tls_roots == null ? {} : { TLS_ROOTS = var.tls_roots },
  )
  fleet_env = merge(
    # Unset: every cluster. `none`: no ECS at all, so no ECS call is made (and none is granted).
    local.all_clusters ? {} : { ECS_CLUSTERS = local.uses_ecs ? join(",", local.cluster_names) : "none" },
    length(var.target_group_arns) > 0 ? { TARGET_GROUP_ARNS = join(",", var.target_group_arns) } : {},
    var.managed_asg_tag == null ? {} : { MANAGED_ASG_TAG = var.managed_asg_tag },
    # Every function that acts on groups has the same scope: an instance of another group is
    # not theirs to drain.
    length(var.auto_scaling_group_names) > 0 ? { AUTO_SCALING_GROUPS = join(",", var.auto_scaling_group_names) } : {},
  )
  env = {
    "spot-interruption" = merge(local.common_env, local.fleet_env, { REBALANCE_ACTION = var.rebalance_action })
    "asg-lifecycle" = merge(local.common_env, local.fleet_env,
      {
        LIFECYCLE_HOOKS               = join(",", local.hook_names)
        MAX_DRAIN_SECONDS             = tostring(var.max_drain_seconds)
        DRAIN_TIMEOUT_RESULT          = var.drain_timeout_result
        LAUNCH_TIMEOUT_SECONDS        = tostring(var.launch_timeout_seconds)
        LAUNCH_TIMEOUT_RESULT         = var.launch_timeout_result
        REBALANCE_UNDO_SECONDS        = tostring(var.rebalance_undo_seconds)
        LAUNCH_FAILURE_WINDOW_SECONDS = tostring(var.launch_failure_window_seconds)
    })
    "ecs-deployment" = merge(local.common_env, {
      REPORT_SUCCESS       = tostring(var.report_success)
      REPORT_TASK_FAILURES = tostring(var.report_task_failures)
      },
      var.service_alert_window_seconds == null ? {} : { SERVICE_ALERT_WINDOW_SECONDS = tostring(var.service_alert_window_seconds) },
    )
    "alarm-fanout" = merge(local.common_env,
      var.muted_alarms == null ? {} : { MUTED_ALARMS = var.muted_alarms },
      var.suppressed_alarms == null ? {} : { SUPPRESSED_ALARMS = var.suppressed_alarms },
    )
    # The function's own ARN is known before it exists: no cycle between it and its schedules.
    "instance-maintenance" = merge(local.common_env, local.fleet_env, {
      MAINTENANCE_ACTION       = local.maintenance_action
      MAINTENANCE_LEAD_SECONDS = tostring(var.maintenance_lead_seconds)
      SCHEDULE_GROUP           = local.schedule_group
      SCHEDULE_TARGET_ARN      = local.maintenance_function_arn
      SCHEDULER_ROLE_ARN       = local.scheduler_role_arn
      # replace needs asg-lifecycle's terminate hook to drain the instance it terminates.
      LIFECYCLE_HOOKS         = contains(local.functions, "asg-lifecycle") && length(local.hook_names) > 0 ? join(",", local.hook_names) : "none"
      FAILED_EVENTS_QUEUE_ARN = "arn:${local.partition}:sqs:${local.region}:${local.account}:${var.name_prefix}-failed-events"
    })
  }

  # Terminating through Auto Scaling only in the groups the module knows, by name or by tag:
  # knowing none, `replace` is `drain` (a check below says so), and nothing is granted.
  replace_scoped     = length(var.auto_scaling_group_names) > 0 || local.managed_tag_key != null
  maintenance_action = var.maintenance_action == "replace" && !local.replace_scoped ? "drain" : var.maintenance_action

  maintenance_on           = contains(local.functions, "instance-maintenance")
  schedule_group           = "${var.name_prefix}-maintenance"
  maintenance_function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${var.name_prefix}-instance-maintenance"
  scheduler_role_name      = "${var.name_prefix}-scheduler-${local.region}"
  scheduler_role_arn       = "arn:${local.partition}:iam::${local.account}:role/${local.scheduler_role_name}"

  # A hook's lifecycle action lives at most min(48 h, 100 × its heartbeat timeout).
  hook_action_limit = min(172800, 100 * var.lifecycle_hook_heartbeat_timeout)
}

module "patterns" {
  source                   = "./modules/patterns"
  ecs_cluster_arns         = local.cluster_arns
  auto_scaling_group_names = var.auto_scaling_group_names
  lifecycle_hook_names     = local.hook_names
  rebalance_action         = var.rebalance_action
  report_task_failures     = var.report_task_failures
  alarm_name_prefixes      = length(var.alarm_name_prefixes) > 0 ? distinct(concat(var.alarm_name_prefixes, ["${var.name_prefix}-failed-events"])) : []
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
  for_each          = local.functions
  function_name     = "${var.name_prefix}-${each.key}"
  description       = "fleetguard ${each.key}"
  role              = local.role_arns[each.key]
  runtime           = "provided.al2023"
  handler           = "bootstrap"
  architectures     = [var.architecture]
  filename          = lookup(var.zip_paths, each.key, null)
  source_code_hash  = contains(keys(var.zip_paths), each.key) ? filebase64sha256(var.zip_paths[each.key]) : null
  s3_bucket         = contains(keys(var.zip_paths), each.key) ? null : var.s3_bucket
  s3_key            = contains(keys(var.zip_paths), each.key) ? null : lookup(var.s3_keys, each.key, null)
  s3_object_version = contains(keys(var.zip_paths), each.key) ? null : lookup(var.s3_object_versions, each.key, null)
  memory_size       = lookup(var.memory_mb, each.key, 128)
  timeout           = lookup(var.timeouts, each.key, local.default_timeouts[each.key])
  kms_key_arn       = var.kms_key_arn
  # A burst of alarms must not take the concurrency the drain functions need.
  # None by default: Lambda keeps 100 unreserved, and an account's quota may be 10.
  reserved_concurrent_executions = lookup(var.reserved_concurrency, each.key, -1)

  environment {
    variables = local.env[each.key]
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = var.log_level
    system_log_level      = var.system_log_level
  }

  tracing_config {
    mode = "PassThrough"
  }

  tags = var.tags

  # The role's policy first: a function invoked before it exists fails its first events, and
  # Lambda checks the on-failure destination (created after the function) against it.
  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = contains(keys(var.zip_paths), each.key) || (var.s3_bucket != null && contains(keys(var.s3_keys), each.key))
      error_message = "${each.key}: no package. Give zip_paths[\"${each.key}\"] (`make build` writes target/lambda/${each.key}/bootstrap.zip) or s3_bucket and s3_keys[\"${each.key}\"]."
    }
    precondition {
      condition     = each.key != "asg-lifecycle" || length(local.hook_names) > 0
      error_message = "asg-lifecycle needs to know its hooks: create_lifecycle_hooks = true, or lifecycle_hook_names naming the hooks you created. Without them it would complete every hook of every group, other tools' too."
    }
    precondition {
      condition     = each.key != "ecs-deployment" || local.uses_ecs
      error_message = "ecs-deployment needs ecs_cluster_names (or [\"*\"] for every cluster): its evidence comes from those clusters' services and tasks."
    }
    precondition {
      condition     = var.slack_bot_token_secret_arn != null || (var.slack_channel == null && length(local.route_channels) == 0)
      error_message = "slack_channel and the routes' slack_channels post through Slack's Web API: give slack_bot_token_secret_arn (a secret holding the bot token, xoxb-…)."
    }
    precondition {
      condition     = length(var.member_account_ids) == 0 || var.organization_id == null
      error_message = "member_account_ids or organization_id: a hub serves listed accounts or a whole organization, not both."
    }
    precondition {
      condition     = (var.console_shortcut_url == null) == (var.console_role_name == null)
      error_message = "console_shortcut_url and console_role_name go together: the access portal, and the permission set links open the account in."
    }
    precondition {
      condition     = each.key != "asg-lifecycle" || length(var.auto_scaling_group_names) > 0 || var.managed_asg_tag != null
      error_message = "asg-lifecycle needs auto_scaling_group_names or managed_asg_tag: it never acts on every group of the account."
    }
    # Lambda measures its 4 KB on the variables as compact JSON. Terraform's jsonencode escapes
    # <, > and & as \u003c and so on: never shorter than Lambda's measure, so never too lenient.
    precondition {
      condition     = length(jsonencode(local.env[each.key])) <= 4096
      error_message = "${each.key}: its environment variables take ${length(jsonencode(local.env[each.key]))} bytes as JSON; Lambda allows 4096. notify_routes is usually the large one: shorten it (secret and topic names instead of ARNs where allowed, fewer rules), or split routes between functions."
    }
  }

  #checkov:skip=CKV_AWS_117:the functions call only public AWS APIs and Slack; a VPC would add NAT cost and cold-start time for nothing
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the user owns; the zips are built from source by `make build`
  #checkov:skip=CKV_AWS_116:async failures go to an on-failure destination (aws_lambda_function_event_invoke_config), which keeps the whole event and error, unlike a DLQ
  #checkov:skip=CKV_AWS_50:X-Ray is off (PassThrough): an SDK tracing layer would double the cold start; logs and EMF metrics carry the event id
  #checkov:skip=CKV_AWS_115:reserved concurrency is opt-in (reserved_concurrency): Lambda keeps 100 unreserved and new accounts' quota may be 10, and reserving it for the drain functions could throttle a mass Spot reclaim
  #checkov:skip=CKV_AWS_173:environment variables hold no secret (the webhook is read from Secrets Manager); encrypted with kms_key_arn when given
}

resource "aws_lambda_function_event_invoke_config" "function" {
  for_each                     = local.functions
  function_name                = aws_lambda_function.function[each.key].function_name
  maximum_retry_attempts       = local.async[each.key].maximum_retry_attempts
  maximum_event_age_in_seconds = local.async[each.key].maximum_event_age_in_seconds
  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_events[0].arn
    }
  }
}

# The sweep invokes asg-lifecycle through an alias with its own retry settings: a failed sweep is
# not retried into the next minute's.
resource "aws_lambda_alias" "sweep" {
  count            = contains(local.functions, "asg-lifecycle") ? 1 : 0
  name             = "sweep"
  description      = "The minutely sweep's entry, with no asynchronous retries"
  function_name    = aws_lambda_function.function["asg-lifecycle"].function_name
  function_version = "$LATEST"
}

resource "aws_lambda_function_event_invoke_config" "sweep" {
  count                        = length(aws_lambda_alias.sweep)
  function_name                = aws_lambda_function.function["asg-lifecycle"].function_name
  qualifier                    = aws_lambda_alias.sweep[0].name
  maximum_retry_attempts       = local.async["asg-lifecycle-sweep"].maximum_retry_attempts
  maximum_event_age_in_seconds = local.async["asg-lifecycle-sweep"].maximum_event_age_in_seconds
  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_events[0].arn
    }
  }
}

# ---------------------------------------------------------------- failed events, notifications, dedupe

resource "aws_sqs_queue" "failed_events" {
  count                             = var.create ? 1 : 0
  name                              = "${var.name_prefix}-failed-events"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags
}

# EventBridge delivers to the same queue what it could not hand to Lambda (its rules' DLQ).
data "aws_iam_policy_document" "failed_events" {
  count = var.create ? 1 : 0
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events[0].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:events:${local.region}:${local.account}:rule/${var.name_prefix}-*"]
    }
  }
}

resource "aws_sqs_queue_policy" "failed_events" {
  count     = var.create ? 1 : 0
  queue_url = aws_sqs_queue.failed_events[0].id
  policy    = data.aws_iam_policy_document.failed_events[0].json
}

resource "aws_cloudwatch_metric_alarm" "failed_events" {
  count               = var.create ? 1 : 0
  alarm_name          = "${var.name_prefix}-failed-events"
  alarm_description   = "fleetguard events that failed after Lambda's retries are waiting in ${aws_sqs_queue.failed_events[0].name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.failed_events[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic_arn]
  ok_actions          = [local.topic_arn]
  # ALARM is high by default in alarm-fanout; the tag says so once tag propagation reaches events.
  tags = merge(var.tags, { severity = "high" })
}

# CloudWatch alarms cannot publish to a topic under the AWS-managed alias/aws/sns key (its policy
# is not editable), so the module's topic gets a key of its own that CloudWatch may use.
data "aws_iam_policy_document" "notifications_key" {
  count = var.create && var.sns_topic_arn == null && var.kms_key_arn == null ? 1 : 0
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "notifications" {
  count               = length(data.aws_iam_policy_document.notifications_key)
  description         = "${var.name_prefix}: the notification topic, usable by CloudWatch alarms"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.notifications_key[0].json
  tags                = var.tags
}

resource "aws_sns_topic" "notifications" {
  count             = var.create && var.sns_topic_arn == null ? 1 : 0
  name              = "${var.name_prefix}-notifications"
  kms_master_key_id = local.topic_key_arn
  tags              = var.tags
}

resource "aws_dynamodb_table" "dedupe" {
  count        = var.create && var.create_dedupe_table ? 1 : 0
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

# ---------------------------------------------------------------- lifecycle hooks (optional)

locals {
  # Hooks nothing completes would hold every launch and termination for the heartbeat timeout.
  hooks_usable = contains(local.functions, "asg-lifecycle") && !var.dry_run
}

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  for_each               = var.create && var.create_lifecycle_hooks ? toset(var.auto_scaling_group_names) : toset([])
  name                   = local.terminate_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  # If fleetguard is gone or failing, the instance still terminates when the heartbeat runs out.
  default_result        = "CONTINUE"
  notification_metadata = contains(keys(local.group_cluster), each.key) ? jsonencode({ ecs_cluster = local.group_cluster[each.key] }) : null

  lifecycle {
    precondition {
      condition = local.hooks_usable
      # Checked here only: a group with a launch hook always has this terminate hook too.
      error_message = "create_lifecycle_hooks needs asg-lifecycle enabled and dry_run off: otherwise nothing completes the hooks, and every launch and termination waits out the heartbeat timeout."
    }
    precondition {
      condition     = var.max_drain_seconds <= local.hook_action_limit
      error_message = "max_drain_seconds (${var.max_drain_seconds}) exceeds what a lifecycle action can be held: min(48 h, 100 × lifecycle_hook_heartbeat_timeout) = ${local.hook_action_limit} s."
    }
  }
}

resource "aws_autoscaling_lifecycle_hook" "launch" {
  for_each               = var.create && var.create_lifecycle_hooks ? toset([for g in var.auto_scaling_group_names : g if contains(keys(local.group_cluster), g)]) : toset([])
  name                   = local.launch_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  # fleetguard down or failing must never block scale-out: the launch goes ahead when the
  # heartbeat runs out. (An instance fleetguard saw fail to join gets launch_timeout_result.)
  default_result        = "CONTINUE"
  notification_metadata = jsonencode({ ecs_cluster = local.group_cluster[each.key] })

  lifecycle {
    precondition {
      condition     = var.launch_timeout_seconds <= local.hook_action_limit
      error_message = "launch_timeout_seconds (${var.launch_timeout_seconds}) exceeds what a lifecycle action can be held: min(48 h, 100 × lifecycle_hook_heartbeat_timeout) = ${local.hook_action_limit} s."
    }
  }
}

# Hooks the user made, with fleetguard unable to complete them: a warning at plan, not an error
# (the user may be turning fleetguard off on purpose).
check "own_hooks_completed" {
  assert {
    condition     = length(var.lifecycle_hook_names) == 0 || local.hooks_usable
    error_message = "lifecycle_hook_names are given but asg-lifecycle is disabled or dry_run is on: nothing completes those hooks, so every launch and termination under them waits out its heartbeat timeout."
  }
}

# `replace` with no group named nor tagged: terminating through Auto Scaling would need every
# group of the account, so the module drains instead, and says so.
check "replace_scoped" {
  assert {
    condition     = !contains(local.functions, "instance-maintenance") || var.maintenance_action != "replace" || local.replace_scoped
    error_message = "maintenance_action = \"replace\" needs auto_scaling_group_names or managed_asg_tag: with neither, instance-maintenance drains (MAINTENANCE_ACTION=drain) and is granted no TerminateInstanceInAutoScalingGroup."
  }
}
