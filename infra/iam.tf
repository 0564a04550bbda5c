# One role per function, least privilege, each statement for calls the function makes (the IAM
# tests run every function with its role, and check each call's resource and condition keys
# against the Service Authorization Reference):
# - ECS: only the named clusters' resources; nothing at all when no cluster is named. ListTasks
#   without a container instance (a service's stopped tasks) is authorised on "*", narrowed by
#   the `ecs:cluster` condition key.
# - Auto Scaling: lifecycle actions only on the named groups, or the tagged ones.
# - Load balancing: DeregisterTargets only on target_group_arns.
# - The topics, the secrets, the table, the failure queue; Describe/List calls that AWS does not
#   scope by resource on "*".

locals {
  ecs_arn = "arn:${local.partition}:ecs:${local.region}:${local.account}"
  # Clusters by ARN pattern ("*" for every cluster of the account).
  ecs_scope               = local.all_clusters ? ["*"] : local.cluster_names
  container_instance_arns = [for c in local.ecs_scope : "${local.ecs_arn}:container-instance/${c}/*"]
  cluster_resource_arns   = [for c in local.ecs_scope : "${local.ecs_arn}:cluster/${c}"]
  task_arns               = [for c in local.ecs_scope : "${local.ecs_arn}:task/${c}/*"]
  service_arns            = [for c in local.ecs_scope : "${local.ecs_arn}:service/${c}/*"]
  group_arns = length(var.auto_scaling_group_names) > 0 ? [
    for g in var.auto_scaling_group_names : "arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${g}"
  ] : ["arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/*"]
  # A secret's ARN ends in a random `-XXXXXX`; a partial ARN matches only with it.
  secret_grants = flatten([for s in local.secret_arns : can(regex("-[a-zA-Z0-9]{6}$", s)) ? [s] : [s, "${s}-??????"]])
  kms_keys      = compact(distinct([var.kms_key_arn, local.topic_key_arn]))
  drainers      = ["spot-interruption", "asg-lifecycle"]
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

# Role names carry the region: IAM is global, and the module may be applied in two regions.
resource "aws_iam_role" "function" {
  for_each             = local.own_roles
  name                 = "${var.name_prefix}-${each.key}-${local.region}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  dynamic "statement" {
    for_each = length(local.topic_arns) > 0 ? [1] : []
    content {
      sid       = "Notify"
      actions   = ["sns:Publish"]
      resources = local.topic_arns
    }
  }
  statement {
    sid       = "FailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events[0].arn]
  }
  dynamic "statement" {
    for_each = length(local.secret_grants) > 0 ? [1] : []
    content {
      sid       = "SlackWebhook"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_grants
    }
  }
  dynamic "statement" {
    for_each = var.create_dedupe_table ? [1] : []
    content {
      # Claims (conditional PutItem), their completion (UpdateItem) and their release when a
      # delivery failed (DeleteItem), so a retry delivers again.
      sid       = "Dedupe"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [aws_dynamodb_table.dedupe[0].arn]
    }
  }
  dynamic "statement" {
    # The customer key of the topic, queue, table and environment; the topic's own key.
    for_each = length(local.kms_keys) > 0 ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.kms_keys
    }
  }

  # spot-interruption and asg-lifecycle: find and take out of service.
  dynamic "statement" {
    for_each = contains(local.drainers, each.key) ? [1] : []
    content {
      sid       = "FindInstances"
      actions   = ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetHealth"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" ? [1] : []
    content {
      sid       = "LifecycleReads"
      actions   = ["autoscaling:DescribeLifecycleHooks", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeWarmPool"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = contains(local.drainers, each.key) && local.all_clusters ? [1] : []
    content {
      # Only with every cluster: the named clusters are never listed.
      sid       = "ListClusters"
      actions   = ["ecs:ListClusters"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = contains(local.drainers, each.key) && local.uses_ecs ? [1] : []
    content {
      sid       = "FindContainerInstances"
      actions   = ["ecs:ListContainerInstances"]
      resources = local.cluster_resource_arns
    }
  }
  dynamic "statement" {
    for_each = contains(local.drainers, each.key) && local.uses_ecs ? [1] : []
    content {
      sid = "DrainContainerInstances"
      # PutAttributes: the drain mark (`fleetguard.drained-for`) of a drain to undo later.
      actions   = ["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState", "ecs:ListTasks", "ecs:PutAttributes"]
      resources = local.container_instance_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" && local.uses_ecs ? [1] : []
    content {
      # Undoing drains of ours: the mark removed.
      sid       = "UndoDrainsRemoveMark"
      actions   = ["ecs:DeleteAttributes"]
      resources = local.container_instance_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" && local.uses_ecs ? [1] : []
    content {
      # Undoing drains of ours: marked container instances listed.
      sid       = "UndoDrainsListMarked"
      actions   = ["ecs:ListAttributes"]
      resources = local.cluster_resource_arns
    }
  }
  dynamic "statement" {
    for_each = contains(["spot-interruption", "asg-lifecycle", "ecs-deployment"], each.key) && local.uses_ecs ? [1] : []
    content {
      sid       = "Tasks"
      actions   = ["ecs:DescribeTasks"]
      resources = local.task_arns
    }
  }
  dynamic "statement" {
    for_each = contains(local.drainers, each.key) && length(var.target_group_arns) > 0 ? [1] : []
    content {
      sid       = "Deregister"
      actions   = ["elasticloadbalancing:DeregisterTargets"]
      resources = var.target_group_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "asg-lifecycle" ? [1] : []
    content {
      sid       = "LifecycleActions"
      actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
      resources = local.group_arns
      dynamic "condition" {
        # Without group names, only groups carrying the managed tag (any value for `key`).
        for_each = length(var.auto_scaling_group_names) == 0 && local.managed_tag_key != null ? [1] : []
        content {
          test     = "StringLike"
          variable = "aws:ResourceTag/${local.managed_tag_key}"
          values   = [coalesce(local.managed_tag_value, "*")]
        }
      }
    }
  }
  dynamic "statement" {
    for_each = contains(["asg-lifecycle", "ecs-deployment"], each.key) && local.uses_ecs ? [1] : []
    content {
      sid       = "Services"
      actions   = ["ecs:DescribeServices"]
      resources = local.service_arns
    }
  }
  dynamic "statement" {
    for_each = each.key == "ecs-deployment" && local.uses_ecs ? [1] : []
    content {
      # A service's stopped tasks: ListTasks with no container instance is authorised on "*".
      sid       = "DeploymentEvidence"
      actions   = ["ecs:ListTasks"]
      resources = ["*"]
      dynamic "condition" {
        for_each = local.all_clusters ? [] : [1]
        content {
          test     = "ArnEquals"
          variable = "ecs:cluster"
          values   = local.cluster_resource_arns
        }
      }
    }
  }
  dynamic "statement" {
    for_each = each.key == "ecs-deployment" && local.uses_ecs ? [1] : []
    content {
      sid       = "TaskDefinitions"
      actions   = ["ecs:DescribeTaskDefinition"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.own_roles
  name     = "${var.name_prefix}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}
