# fleetguard in a member account of an organization's hub: in this account and Region, the
# rules that forward the events fleetguard handles to the hub's bus, the role the hub's
# functions assume here (granted what acting on this fleet needs, scoped as the standalone
# module scopes it), and the lifecycle hooks, which must live in this account's groups.
# Apply it in each member account and Region, with a provider for that account.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition
  enabled = {
    "spot-interruption"    = var.functions.spot_interruption
    "asg-lifecycle"        = var.functions.asg_lifecycle
    "ecs-deployment"       = var.functions.ecs_deployment
    "alarm-fanout"         = var.functions.alarm_fanout
    "instance-maintenance" = var.functions.instance_maintenance
  }
  functions = toset([for name, on in local.enabled : name if on])
  # The functions that call AWS here (alarm-fanout only tells people).
  actors = [for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "instance-maintenance"] : f if contains(local.functions, f)]

  group_cluster = { for g, c in var.ecs_cluster_for_group : g => reverse(split("/", c))[0] }
  cluster_names = distinct(concat([for c in var.ecs_cluster_names : reverse(split("/", c))[0]], values(local.group_cluster)))
  all_clusters  = contains(local.cluster_names, "*")
  uses_ecs      = length(local.cluster_names) > 0
  cluster_arns  = local.all_clusters ? [] : [for c in local.cluster_names : "arn:${local.partition}:ecs:${local.region}:${local.account}:cluster/${c}"]

  terminate_hook = "${var.name_prefix}-drain"
  launch_hook    = "${var.name_prefix}-join"
  created_hooks  = var.create_lifecycle_hooks ? concat([local.terminate_hook], length(var.ecs_cluster_for_group) > 0 ? [local.launch_hook] : []) : []
  hook_names     = distinct(concat(local.created_hooks, var.lifecycle_hook_names))

  replace_scoped = length(var.auto_scaling_group_names) > 0 || var.managed_asg_tag != null

  rules = {
    for k, target in module.patterns.targets : k => target
    if contains(local.functions, target)
    && (local.uses_ecs || jsondecode(module.patterns.patterns[k]).source != ["aws.ecs"])
  }
}

module "patterns" {
  source                   = "../patterns"
  ecs_cluster_arns         = local.cluster_arns
  auto_scaling_group_names = var.auto_scaling_group_names
  lifecycle_hook_names     = local.hook_names
  rebalance_action         = var.rebalance_action
  report_task_failures     = var.report_task_failures
  alarm_name_prefixes      = var.alarm_name_prefixes
}

module "fleet_access" {
  source                   = "../fleet_access"
  partition                = local.partition
  region                   = local.region
  account                  = local.account
  cluster_names            = local.all_clusters ? ["*"] : local.cluster_names
  auto_scaling_group_names = var.auto_scaling_group_names
  managed_asg_tag          = var.managed_asg_tag
  target_group_arns        = var.target_group_arns
  replace                  = var.maintenance_action == "replace" && local.replace_scoped
}

# ---------------------------------------------------------------- the role the hub assumes

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.hub_role_arns
    }
    dynamic "condition" {
      for_each = var.organization_id == null ? [] : [var.organization_id]
      content {
        test     = "StringEquals"
        variable = "aws:PrincipalOrgID"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "member" {
  count                = var.create_role ? 1 : 0
  name                 = var.member_role_name
  description          = "fleetguard: the hub's functions act on this account's fleet"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "member" {
  dynamic "statement" {
    for_each = [for st in module.fleet_access.statements : st if length(setintersection(st.functions, local.actors)) > 0]
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

resource "aws_iam_role_policy" "member" {
  count  = var.create_role ? 1 : 0
  name   = "${var.name_prefix}-member-${local.region}"
  role   = aws_iam_role.member[0].id
  policy = data.aws_iam_policy_document.member.json
}

# ---------------------------------------------------------------- forwarding to the hub

data "aws_iam_policy_document" "forward_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# EventBridge sends to another account's bus with a role of the sending account.
resource "aws_iam_role" "forward" {
  name                 = "${var.name_prefix}-forward-${local.region}"
  description          = "fleetguard: EventBridge forwards this account's fleet events to the hub"
  assume_role_policy   = data.aws_iam_policy_document.forward_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "forward" {
  statement {
    sid       = "HubBus"
    actions   = ["events:PutEvents"]
    resources = [var.hub_event_bus_arn]
  }
}

resource "aws_iam_role_policy" "forward" {
  name   = "${var.name_prefix}-forward"
  role   = aws_iam_role.forward.id
  policy = data.aws_iam_policy_document.forward.json
}

resource "aws_cloudwatch_event_rule" "forward" {
  for_each      = local.rules
  name          = "${var.name_prefix}-to-hub-${replace(each.key, "_", "-")}"
  description   = "fleetguard: forwards ${each.value}'s events to the hub"
  event_pattern = module.patterns.patterns[each.key]
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "forward" {
  for_each = local.rules
  rule     = aws_cloudwatch_event_rule.forward[each.key].name
  arn      = var.hub_event_bus_arn
  role_arn = aws_iam_role.forward.arn
}

# The minute schedule, forwarded: the hub's asg-lifecycle sweeps this account's lifecycle
# actions, drains and marks (a heartbeat missed here would let AWS expire a hook).
resource "aws_cloudwatch_event_rule" "sweep" {
  count               = contains(local.functions, "asg-lifecycle") ? 1 : 0
  name                = "${var.name_prefix}-to-hub-sweep"
  description         = "fleetguard: the hub's asg-lifecycle sweep of this account, every minute"
  schedule_expression = "rate(1 minute)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "sweep" {
  count    = length(aws_cloudwatch_event_rule.sweep)
  rule     = aws_cloudwatch_event_rule.sweep[0].name
  arn      = var.hub_event_bus_arn
  role_arn = aws_iam_role.forward.arn
}

# ---------------------------------------------------------------- lifecycle hooks

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  for_each               = var.create_lifecycle_hooks && contains(local.functions, "asg-lifecycle") ? toset(var.auto_scaling_group_names) : toset([])
  name                   = local.terminate_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  # If the hub is gone or failing, the instance still terminates when the heartbeat runs out.
  default_result        = "CONTINUE"
  notification_metadata = contains(keys(local.group_cluster), each.key) ? jsonencode({ ecs_cluster = local.group_cluster[each.key] }) : null
}

resource "aws_autoscaling_lifecycle_hook" "launch" {
  for_each               = var.create_lifecycle_hooks && contains(local.functions, "asg-lifecycle") ? toset([for g in var.auto_scaling_group_names : g if contains(keys(local.group_cluster), g)]) : toset([])
  name                   = local.launch_hook
  autoscaling_group_name = each.key
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.lifecycle_hook_heartbeat_timeout
  default_result         = "CONTINUE"
  notification_metadata  = jsonencode({ ecs_cluster = local.group_cluster[each.key] })
}
