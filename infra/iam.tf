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
  # A secret's ARN ends in a random `-XXXXXX`; a partial ARN (or a name) matches only with it.
  # Whether a given ARN already ends in that suffix cannot be told from its text (`pd-oncall`
  # ends like one), so both are granted: the second covers only names ending in six more.
  secret_grants = flatten([for s in local.secret_arns : [s, "${s}-??????"]])
  kms_keys      = compact(distinct(concat([var.kms_key_arn, local.topic_key_arn], var.extra_kms_key_arns)))
  drainers      = ["spot-interruption", "asg-lifecycle", "instance-maintenance"]
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

locals {
  all_functions = ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"]
  # Only with the managed tag and no group names: the groups carrying it (any value for `key`).
  tagged_groups_only = length(var.auto_scaling_group_names) == 0 && local.managed_tag_key != null ? [
    { test = "StringLike", variable = "aws:ResourceTag/${local.managed_tag_key}", values = [coalesce(local.managed_tag_value, "*")] }
  ] : []
  # Every statement a function's policy may hold, with the functions it is for. A statement whose
  # resources are empty (no cluster, no target group, no secret, no table) is not granted.
  statements = [
    { sid = "Notify", functions = local.all_functions, actions = ["sns:Publish"], resources = local.topic_arns, conditions = [] },
    { sid = "NotifySecrets", functions = local.all_functions, actions = ["secretsmanager:GetSecretValue"], resources = local.secret_grants, conditions = [] },
    # Claims (conditional PutItem), their completion (UpdateItem), their release when a delivery
    # failed (DeleteItem), so a retry delivers again.
    { sid = "Dedupe", functions = local.all_functions, actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources = var.create && var.create_dedupe_table ? [aws_dynamodb_table.dedupe[0].arn] : [], conditions = [] },
    # The customer key of the topic, queue, table and environment; the topic's own key.
    { sid = "Kms", functions = local.all_functions, actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = local.kms_keys, conditions = [] },

    # spot-interruption and asg-lifecycle: find the instance and take it out of service.
    { sid = "FindInstances", functions = local.drainers, actions = ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetHealth"], resources = ["*"], conditions = [] },
    # Only with every cluster: named clusters are never listed.
    { sid = "ListClusters", functions = local.drainers, actions = ["ecs:ListClusters"], resources = local.all_clusters ? ["*"] : [], conditions = [] },
    { sid = "FindContainerInstances", functions = local.drainers, actions = ["ecs:ListContainerInstances"], resources = local.cluster_resource_arns, conditions = [] },
    # PutAttributes: the drain mark (`fleetguard.drained-for`) of a drain to undo later.
    { sid = "DrainContainerInstances", functions = local.drainers, actions = ["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState", "ecs:PutAttributes"], resources = local.container_instance_arns, conditions = [] },
    { sid = "TasksOnContainerInstances", functions = ["spot-interruption", "asg-lifecycle"], actions = ["ecs:ListTasks"], resources = local.container_instance_arns, conditions = [] },
    { sid = "Deregister", functions = local.drainers, actions = ["elasticloadbalancing:DeregisterTargets"], resources = var.target_group_arns, conditions = [] },
    { sid = "Tasks", functions = ["spot-interruption", "asg-lifecycle", "ecs-deployment"], actions = ["ecs:DescribeTasks"], resources = local.task_arns, conditions = [] },

    # asg-lifecycle: hooks, warm pools, lifecycle actions, undoing drains of ours.
    { sid = "LifecycleReads", functions = ["asg-lifecycle"], actions = ["autoscaling:DescribeLifecycleHooks", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeWarmPool"], resources = ["*"], conditions = [] },
    {
      sid = "LifecycleActions", functions = ["asg-lifecycle"], actions = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"], resources = local.group_arns,
      # Without group names, only groups carrying the managed tag (any value for `key`).
      conditions = local.tagged_groups_only
    },
    { sid = "UndoDrainsRemoveMark", functions = ["asg-lifecycle", "instance-maintenance"], actions = ["ecs:DeleteAttributes"], resources = local.container_instance_arns, conditions = [] },
    { sid = "UndoDrainsListMarked", functions = ["asg-lifecycle"], actions = ["ecs:ListAttributes"], resources = local.cluster_resource_arns, conditions = [] },
    { sid = "Services", functions = ["asg-lifecycle", "ecs-deployment"], actions = ["ecs:DescribeServices"], resources = local.service_arns, conditions = [] },

    # ecs-deployment: a service's stopped tasks. ListTasks with no container instance is
    # authorised on "*", narrowed by the `ecs:cluster` condition key.
    {
      sid        = "DeploymentEvidence", functions = ["ecs-deployment"], actions = ["ecs:ListTasks"], resources = local.uses_ecs ? ["*"] : [],
      conditions = local.all_clusters ? [] : [{ test = "ArnEquals", variable = "ecs:cluster", values = local.cluster_resource_arns }]
    },
    { sid = "TaskDefinitions", functions = ["ecs-deployment"], actions = ["ecs:DescribeTaskDefinition"], resources = local.uses_ecs ? ["*"] : [], conditions = [] },

    # instance-maintenance: one-time schedules in its group, invoked through the scheduler role;
    # a rebooted instance's targets registered again; an instance replaced in its group.
    { sid = "Schedules", functions = ["instance-maintenance"], actions = ["scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"], resources = ["arn:${local.partition}:scheduler:${local.region}:${local.account}:schedule/${local.schedule_group}/*"], conditions = [] },
    { sid = "PassSchedulerRole", functions = ["instance-maintenance"], actions = ["iam:PassRole"], resources = [local.scheduler_role_arn], conditions = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["scheduler.amazonaws.com"] }] },
    { sid = "Reregister", functions = ["instance-maintenance", "asg-lifecycle"], actions = ["elasticloadbalancing:RegisterTargets"], resources = var.target_group_arns, conditions = [] },
    # Replacing is safe only in a group whose terminate hook drains the instance first.
    { sid = "GroupHooks", functions = ["instance-maintenance"], actions = ["autoscaling:DescribeLifecycleHooks"], resources = ["*"], conditions = [] },
    # Only in the groups the module knows (named, or tagged); none known, none granted.
    { sid = "Replace", functions = ["instance-maintenance"], actions = ["autoscaling:TerminateInstanceInAutoScalingGroup"], resources = local.replace_scoped && local.maintenance_action == "replace" ? local.group_arns : [], conditions = local.tagged_groups_only },
  ]
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  statement {
    sid       = "FailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events[0].arn]
  }
  dynamic "statement" {
    for_each = [for st in local.statements : st if contains(st.functions, each.key) && length(st.resources) > 0]
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.own_roles
  name     = "${var.name_prefix}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}
