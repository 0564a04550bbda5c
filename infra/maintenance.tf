# instance-maintenance's one-time schedules and the role that fires them; the dashboard.

# ---------------------------------------------------------------- instance-maintenance's schedules

# One-time schedules live here: the function's scheduler permissions are scoped to this group.
resource "aws_scheduler_schedule_group" "maintenance" {
  count = local.maintenance_on ? 1 : 0
  name  = local.schedule_group
  tags  = var.tags
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# The role EventBridge Scheduler assumes to invoke instance-maintenance when a schedule comes due,
# and to hand the payload to the failed-events queue when the invocation keeps failing.
resource "aws_iam_role" "scheduler" {
  count                = local.maintenance_on ? 1 : 0
  name                 = local.scheduler_role_name
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  count = local.maintenance_on ? 1 : 0
  statement {
    sid       = "InvokeMaintenance"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.maintenance_function_arn, "${local.maintenance_function_arn}:*"]
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events[0].arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "QueueKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count  = local.maintenance_on ? 1 : 0
  name   = "${var.name_prefix}-scheduler"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler[0].json
}

# ---------------------------------------------------------------- dashboard

resource "aws_cloudwatch_dashboard" "fleet" {
  count = var.create && var.create_dashboard ? 1 : 0
  # Dashboards are global to the account: one per Region.
  dashboard_name = "${var.name_prefix}-fleet-${local.region}"
  # A hub's adds the per-account views (its metrics carry an `Account` dimension set).
  dashboard_body = jsonencode({
    widgets = concat(
      jsondecode(templatefile("${path.module}/dashboard.json.tftpl", { namespace = var.name_prefix, region = local.region })).widgets,
      local.hub ? jsondecode(templatefile("${path.module}/dashboard_hub.json.tftpl", { namespace = var.name_prefix, region = local.region })).widgets : [],
    )
  })
}
