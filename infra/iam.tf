# One role per function, least privilege. Mutating ECS calls only on the given clusters'
# container instances; lifecycle calls only on the given groups (or, by tag, on the managed
# ones); publish only to the topics; the one secret; the one table. Describe and List calls that
# AWS does not scope by resource use "*".

locals {
  ecs_scope               = length(var.ecs_cluster_names) > 0 ? var.ecs_cluster_names : ["*"]
  ecs_arn                 = "arn:${local.partition}:ecs:${local.region}:${local.account}"
  container_instance_arns = [for c in local.ecs_scope : "${local.ecs_arn}:container-instance/${c}/*"]
  cluster_resource_arns   = [for c in local.ecs_scope : "${local.ecs_arn}:cluster/${c}"]
  task_arns               = [for c in local.ecs_scope : "${local.ecs_arn}:task/${c}/*"]
  service_arns            = [for c in local.ecs_scope : "${local.ecs_arn}:service/${c}/*"]
  group_arns = length(var.auto_scaling_group_names) > 0 ? [
    for g in var.auto_scaling_group_names : "arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${g}"
  ] : ["arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/*"]
  target_group_scope = length(var.target_group_arns) > 0 ? var.target_group_arns : ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account}:targetgroup/*"]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  statement {
    sid       = "Notify"
    actions   = ["sns:Publish"]
    resources = local.topic_arns
  }
  statement {
    sid       = "FailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events.arn]
  }
  dynamic "statement" {
    for_each = length(local.secret_arns) > 0 ? [1] : []
    content {
      sid       = "SlackWebhook"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }
  dynamic "statement" {
    for_each = var.create_dedupe_table ? [1] : []
    content {
      sid       = "Dedupe"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [aws_dynamodb_table.dedupe[0].arn]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }

  # spot-interruption and asg-lifecycle: find and drain.
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle"], each.key) ? [1] : []
    content {
      sid       = "Describe"
      actions   = ["ecs:ListClusters", "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLifecycleHooks", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeWarmPool", "elasticloadbalancing:DescribeTargetHealth"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle"], each.key) ? [1] : []
    content {
      sid       = "FindContainerInstances"
      actions   = ["ecs:ListContainerInstances"]
      resources = local.cluster_resource_arns
    }
  }
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle"], each.key) ? [1] : []
    content {
      sid = "DrainContainerInstances"
      # PutAttributes: the drain mark (`fleetguard.drained-for`) of a drain to undo later.
      actions   = ["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState", "ecs:ListTasks", "ecs:PutAttributes"]
      resources = local.container_instance_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" ? [1] : []
    content {
      # Undoing drains of ours: the mark removed, and marked container instances listed.
      sid       = "UndoDrainsRemoveMark"
      actions   = ["ecs:DeleteAttributes"]
      resources = local.container_instance_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" ? [1] : []
    content {
      sid       = "UndoDrainsListMarked"
      actions   = ["ecs:ListAttributes"]
      resources = local.cluster_resource_arns
    }
  }
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle", "ecs-deployment"], each.key) ? [1] : []
    content {
      sid       = "Tasks"
      actions   = ["ecs:DescribeTasks"]
      resources = local.task_arns
    }
  }
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle"], each.key) ? [1] : []
    content {
      sid       = "Deregister"
      actions   = ["elasticloadbalancing:DeregisterTargets"]
      resources = local.target_group_scope
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" ? [1] : []
    content {
      sid       = "LifecycleActions"
      actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
      resources = local.group_arns
      dynamic "condition" {
        # Without group names, only groups carrying the managed tag.
        for_each = length(var.auto_scaling_group_names) == 0 && local.managed_tag_key != null && local.managed_tag_value != null ? [1] : []
        content {
          test     = "StringEquals"
          variable = "autoscaling:ResourceTag/${local.managed_tag_key}"
          values   = [local.managed_tag_value]
        }
      }
    }
  }
  dynamic "statement" {
    for_each = contains(["asg-lifecycle", "ecs-deployment"], each.key) ? [1] : []
    content {
      sid       = "Services"
      actions   = ["ecs:DescribeServices"]
      resources = local.service_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "ecs-deployment" ? [1] : []
    content {
      sid       = "DeploymentEvidence"
      actions   = ["ecs:ListTasks"]
      resources = local.container_instance_arns
      condition {
        test     = "ArnLike"
        variable = "ecs:cluster"
        values   = local.cluster_resource_arns
      }
    }
  }
  dynamic "statement" {
    for_each = each.key == "ecs-deployment" ? [1] : []
    content {
      sid       = "TaskDefinitions"
      actions   = ["ecs:DescribeTaskDefinition"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "${var.name_prefix}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}
