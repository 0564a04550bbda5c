variable "hub_event_bus_arn" {
  description = "The hub's event bus (the root module's hub_event_bus_arn output)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/.+$", var.hub_event_bus_arn))
    error_message = "hub_event_bus_arn: an event bus ARN."
  }
}

variable "hub_role_arns" {
  description = "The hub's function roles the member role trusts (the root module's member_trust_role_arns output)."
  type        = list(string)
  validation {
    condition     = length(var.hub_role_arns) > 0 && alltrue([for r in var.hub_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", r))])
    error_message = "hub_role_arns: one or more IAM role ARNs."
  }
}

variable "organization_id" {
  description = "When set, the member role also requires the caller to be in this organization."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of the rule, role and hook names: the hub's name_prefix (hook names must match its LIFECYCLE_HOOKS)."
  type        = string
  default     = "fleetguard"
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,23}$", var.name_prefix))
    error_message = "name_prefix: letters, digits and hyphens, at most 24, starting with a letter."
  }
}

variable "member_role_name" {
  description = "The role the hub assumes here: the hub's member_role_name."
  type        = string
  default     = "fleetguard-member"
}

variable "create_role" {
  description = "Create the member role. IAM is global: in a second Region of the same account, set false (the first Region's role serves both; its policy covers that Region only, so give the second Region's statements with an extra policy, or apply the module there first)."
  type        = bool
  default     = true
}

variable "functions" {
  description = "Which of the hub's functions this account's events go to: as the hub's functions."
  type = object({
    spot_interruption    = optional(bool, true)
    asg_lifecycle        = optional(bool, true)
    ecs_deployment       = optional(bool, true)
    alarm_fanout         = optional(bool, true)
    instance_maintenance = optional(bool, true)
  })
  default = {}
}

variable "ecs_cluster_names" {
  description = "This account's ECS clusters the hub acts on ([\"*\"]: every cluster; empty: no ECS)."
  type        = list(string)
  default     = []
}

variable "ecs_cluster_for_group" {
  description = "Group name => the ECS cluster its instances join (launch hooks wait for them)."
  type        = map(string)
  default     = {}
}

variable "auto_scaling_group_names" {
  description = "This account's groups the hub manages; their lifecycle hooks are created here."
  type        = list(string)
  default     = []
}

variable "managed_asg_tag" {
  description = "Without group names, the groups carrying this tag (`key` or `key=value`), as the hub's managed_asg_tag."
  type        = string
  default     = null
}

variable "lifecycle_hook_names" {
  description = "Hooks you created yourself that the hub completes."
  type        = list(string)
  default     = []
}

variable "create_lifecycle_hooks" {
  description = "Create the terminate hook (and, with ecs_cluster_for_group, the launch hook) in each named group."
  type        = bool
  default     = true
}

variable "lifecycle_hook_heartbeat_timeout" {
  description = "Seconds; at least 600 (the sweep's margin, as in the root module)."
  type        = number
  default     = 600
  validation {
    condition     = var.lifecycle_hook_heartbeat_timeout >= 600 && var.lifecycle_hook_heartbeat_timeout <= 7200
    error_message = "lifecycle_hook_heartbeat_timeout must be from 600 to 7200."
  }
}

variable "target_group_arns" {
  description = "This account's target groups the hub may deregister instances from and register them in again."
  type        = list(string)
  default     = []
}

variable "rebalance_action" {
  description = "As the hub's: with ignore, rebalance recommendations are not forwarded."
  type        = string
  default     = "notify"
}

variable "report_task_failures" {
  description = "As the hub's: forward essential-container exits too."
  type        = bool
  default     = false
}

variable "alarm_name_prefixes" {
  description = "Alarms forwarded by name prefix; empty: every alarm."
  type        = list(string)
  default     = []
}

variable "maintenance_action" {
  description = "As the hub's maintenance_action: with replace (and groups named or tagged), the member role may terminate instances in those groups."
  type        = string
  default     = "drain"
}

variable "permissions_boundary_arn" {
  description = "A permissions boundary for the roles this module creates."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
