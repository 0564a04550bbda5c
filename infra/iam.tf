# One role per function, least privilege, each statement for calls the function makes (the IAM
# tests run every function with its role, and check each call's resource and condition keys
# against the Service Authorization Reference):
# - its own account's fleet: `modules/fleet_access` (a member's, through the member role);
# - the topics, the secrets, the table, the failure queue, the schedules: the hub's own;
# - as a hub: sts:AssumeRole of the member role, in the members (or the organization) only.

locals {
  # A secret's ARN ends in a random `-XXXXXX`; a partial ARN (or a name) matches only with it.
  # Whether a given ARN already ends in that suffix cannot be told from its text (`pd-oncall`
  # ends like one), so both are granted: the second covers only names ending in six more.
  secret_grants = flatten([for s in local.secret_arns : [s, "${s}-??????"]])
  kms_keys      = compact(distinct(concat([var.kms_key_arn, local.topic_key_arn], var.extra_kms_key_arns)))
}

module "fleet_access" {
  source                   = "./modules/fleet_access"
  partition                = local.partition
  region                   = local.region
  account                  = local.account
  cluster_names            = local.all_clusters ? ["*"] : local.cluster_names
  auto_scaling_group_names = var.auto_scaling_group_names
  managed_asg_tag          = var.managed_asg_tag
  target_group_arns        = var.target_group_arns
  replace                  = local.replace_scoped && local.maintenance_action == "replace"
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
  # The functions that call AWS in the account an event is about (alarm-fanout only tells).
  member_actors = ["spot-interruption", "asg-lifecycle", "ecs-deployment", "instance-maintenance"]
  # Every statement a function's policy may hold, with the functions it is for. A statement whose
  # resources are empty (no cluster, no target group, no secret, no table) is not granted.
  statements = concat([
    { sid = "Notify", functions = local.all_functions, actions = ["sns:Publish"], resources = local.topic_arns, conditions = [] },
    { sid = "NotifySecrets", functions = local.all_functions, actions = ["secretsmanager:GetSecretValue"], resources = local.secret_grants, conditions = [] },
    # Claims (conditional PutItem), their completion (UpdateItem), their release when a delivery
    # failed (DeleteItem), so a retry delivers again.
    { sid = "Dedupe", functions = local.all_functions, actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources = var.create && var.create_dedupe_table ? [aws_dynamodb_table.dedupe[0].arn] : [], conditions = [] },
    # The customer key of the topic, queue, table and environment; the topic's own key.
    { sid = "Kms", functions = local.all_functions, actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = local.kms_keys, conditions = [] },
    # instance-maintenance: one-time schedules in its group, invoked through the scheduler role.
    { sid = "Schedules", functions = ["instance-maintenance"], actions = ["scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"], resources = ["arn:${local.partition}:scheduler:${local.region}:${local.account}:schedule/${local.schedule_group}/*"], conditions = [] },
    { sid = "PassSchedulerRole", functions = ["instance-maintenance"], actions = ["iam:PassRole"], resources = [local.scheduler_role_arn], conditions = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["scheduler.amazonaws.com"] }] },
    # A hub: the member role, in the listed accounts, or in any account of the organization.
    {
      sid = "AssumeMemberRole", functions = local.member_actors, actions = ["sts:AssumeRole"],
      resources = !local.hub ? [] : (length(var.member_account_ids) > 0 ? [
        for a in var.member_account_ids : "arn:${local.partition}:iam::${a}:role/${var.member_role_name}"
      ] : ["arn:${local.partition}:iam::*:role/${var.member_role_name}"]),
      conditions = length(var.member_account_ids) == 0 && var.organization_id != null ? [
        { test = "StringEquals", variable = "aws:ResourceOrgID", values = [var.organization_id] }
      ] : []
    },
  ], module.fleet_access.statements)
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
