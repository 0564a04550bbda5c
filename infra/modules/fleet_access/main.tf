# What acting on a fleet needs in one account, as IAM statements: the root module grants them to
# each function's role for its own account, and `modules/member` to the role a hub assumes in a
# member account. Pure: no provider, no resources.
#
# - ECS: only the named clusters' resources; nothing at all when no cluster is named. ListTasks
#   without a container instance (a service's stopped tasks) is authorised on "*", narrowed by
#   the `ecs:cluster` condition key.
# - Auto Scaling: lifecycle actions only on the named groups, or the tagged ones.
# - Load balancing: (De)RegisterTargets only on target_group_arns.
# - Describe/List calls that AWS does not scope by resource on "*".

terraform {
  required_version = ">= 1.5"
}

variable "partition" {
  type = string
}

variable "region" {
  type = string
}

variable "account" {
  description = "The account whose fleet the statements are for."
  type        = string
}

variable "cluster_names" {
  description = "ECS cluster names; [\"*\"] for every cluster; empty for no ECS."
  type        = list(string)
  default     = []
}

variable "auto_scaling_group_names" {
  type    = list(string)
  default = []
}

variable "managed_asg_tag" {
  description = "`key` or `key=value`: without group names, only groups carrying it."
  type        = string
  default     = null
}

variable "target_group_arns" {
  type    = list(string)
  default = []
}

variable "replace" {
  description = "Whether instance-maintenance may terminate instances in their groups (maintenance_action = replace, scoped)."
  type        = bool
  default     = false
}

locals {
  all_clusters = contains(var.cluster_names, "*")
  uses_ecs     = length(var.cluster_names) > 0
  ecs_arn      = "arn:${var.partition}:ecs:${var.region}:${var.account}"
  # Clusters by ARN pattern ("*" for every cluster of the account).
  ecs_scope               = local.all_clusters ? ["*"] : var.cluster_names
  container_instance_arns = [for c in local.ecs_scope : "${local.ecs_arn}:container-instance/${c}/*"]
  cluster_resource_arns   = [for c in local.ecs_scope : "${local.ecs_arn}:cluster/${c}"]
  task_arns               = [for c in local.ecs_scope : "${local.ecs_arn}:task/${c}/*"]
  service_arns            = [for c in local.ecs_scope : "${local.ecs_arn}:service/${c}/*"]
  group_arns = length(var.auto_scaling_group_names) > 0 ? [
    for g in var.auto_scaling_group_names : "arn:${var.partition}:autoscaling:${var.region}:${var.account}:autoScalingGroup:*:autoScalingGroupName/${g}"
  ] : ["arn:${var.partition}:autoscaling:${var.region}:${var.account}:autoScalingGroup:*:autoScalingGroupName/*"]
  managed_tag_key   = var.managed_asg_tag == null ? null : split("=", var.managed_asg_tag)[0]
  managed_tag_value = var.managed_asg_tag == null ? null : (length(split("=", var.managed_asg_tag)) > 1 ? join("=", slice(split("=", var.managed_asg_tag), 1, length(split("=", var.managed_asg_tag)))) : null)
  # Only with the managed tag and no group names: the groups carrying it (any value for `key`).
  tagged_groups_only = length(var.auto_scaling_group_names) == 0 && local.managed_tag_key != null ? [
    { test = "StringLike", variable = "aws:ResourceTag/${local.managed_tag_key}", values = [coalesce(local.managed_tag_value, "*")] }
  ] : []
  drainers = ["spot-interruption", "asg-lifecycle", "instance-maintenance"]

  # Every statement, with the functions it is for. A statement whose resources are empty (no
  # cluster, no target group) is not granted.
  statements = [
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

    # instance-maintenance: a rebooted instance's targets registered again; an instance
    # replaced in its group.
    { sid = "Reregister", functions = ["instance-maintenance", "asg-lifecycle"], actions = ["elasticloadbalancing:RegisterTargets"], resources = var.target_group_arns, conditions = [] },
    # Replacing is safe only in a group whose terminate hook drains the instance first.
    { sid = "GroupHooks", functions = ["instance-maintenance"], actions = ["autoscaling:DescribeLifecycleHooks"], resources = ["*"], conditions = [] },
    # Only in the groups named or tagged; none known, none granted.
    { sid = "Replace", functions = ["instance-maintenance"], actions = ["autoscaling:TerminateInstanceInAutoScalingGroup"], resources = var.replace ? local.group_arns : [], conditions = local.tagged_groups_only },
  ]
}

output "statements" {
  description = "IAM statements ({sid, functions, actions, resources, conditions}) for acting on this account's fleet; those with no resource are left out."
  value       = [for st in local.statements : st if length(st.resources) > 0]
}
