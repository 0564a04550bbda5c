variable "create" {
  description = "Create anything at all (false: the module is a no-op, for a stack that turns fleetguard off in some environments)."
  type        = bool
  default     = true
}

variable "name_prefix" {
  description = "Prefix of every resource name. At most 24 characters, so every derived name (rules, roles with the region, queues) stays within AWS's 64-character limits."
  type        = string
  default     = "fleetguard"
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,23}$", var.name_prefix))
    error_message = "name_prefix: letters, digits and hyphens, at most 24, starting with a letter."
  }
}

variable "functions" {
  description = "Which functions to deploy."
  type = object({
    spot_interruption = optional(bool, true)
    asg_lifecycle     = optional(bool, true)
    ecs_deployment    = optional(bool, true)
    alarm_fanout      = optional(bool, true)
    # AWS Health scheduled changes and instances stopping outside any hook.
    instance_maintenance = optional(bool, true)
  })
  default = {}
}

variable "zip_paths" {
  description = "Function name => path of its zip (`make build` writes target/lambda/<name>/bootstrap.zip). Each enabled function needs a zip here or an S3 key in s3_keys."
  type        = map(string)
  default     = {}
}

variable "s3_bucket" {
  description = "S3 bucket holding the function zips (with s3_keys), for a module used from a git or registry source or a CI pipeline that uploads the zips."
  type        = string
  default     = null
}

variable "s3_keys" {
  description = "Function name => S3 key of its zip in s3_bucket."
  type        = map(string)
  default     = {}
}

variable "s3_object_versions" {
  description = "Function name => S3 object version of its zip (a new version redeploys the function)."
  type        = map(string)
  default     = {}
}

variable "architecture" {
  description = "arm64 or x86_64, matching how the zips were built."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Function name => memory in MB (default 128 each)."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for m in values(var.memory_mb) : m >= 128 && m <= 10240])
    error_message = "memory_mb values must be between 128 and 10240."
  }
}

variable "timeouts" {
  description = "Function name => timeout in seconds (defaults: spot-interruption 60, asg-lifecycle 120, ecs-deployment 60, alarm-fanout 30, instance-maintenance 60)."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for t in values(var.timeouts) : t >= 3 && t <= 900])
    error_message = "timeouts must be between 3 and 900 seconds."
  }
}

variable "ecs_cluster_names" {
  description = "ECS clusters (names or ARNs) fleetguard drains and reports on; the clusters of ecs_cluster_for_group are added. Empty: no ECS at all (plain EC2 fleets): the functions make no ECS call and are granted none. `[\"*\"]`: every cluster of the account, with IAM to match."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.ecs_cluster_names : c == "*" || can(regex("^([a-zA-Z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[a-zA-Z0-9_-]{1,255})$", c))])
    error_message = "ecs_cluster_names: cluster names, cluster ARNs, or \"*\" alone."
  }
  validation {
    condition     = !contains(var.ecs_cluster_names, "*") || length(var.ecs_cluster_names) == 1
    error_message = "ecs_cluster_names: \"*\" (every cluster) stands alone."
  }
}

variable "auto_scaling_group_names" {
  description = "The managed Auto Scaling groups. Empty: the groups with managed_asg_tag (asg-lifecycle needs one or the other, so it never acts on every group of the account)."
  type        = list(string)
  default     = []
}

variable "lifecycle_hook_names" {
  description = "Lifecycle hooks you created yourself that fleetguard completes (with create_lifecycle_hooks, the module's own are added). Hooks not named here belong to other tools and are left alone."
  type        = list(string)
  default     = []
}

variable "managed_asg_tag" {
  description = "Only groups with this tag are managed: `key` or `key=value`. Also scopes the lifecycle IAM permissions when no group names are given."
  type        = string
  default     = null
  validation {
    condition     = var.managed_asg_tag == null || can(regex("^[^=]+(=.*)?$", var.managed_asg_tag))
    error_message = "managed_asg_tag must be `key` or `key=value`."
  }
}

variable "target_group_arns" {
  description = "Target groups instances are deregistered from besides their Auto Scaling group's own (the only ones for instances in no group). It is also the whole IAM scope of DeregisterTargets: list the groups' own target groups too. Empty: nothing may be deregistered."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.target_group_arns : can(regex("^arn:aws[a-z-]*:elasticloadbalancing:.*:targetgroup/", a))])
    error_message = "target_group_arns must be target group ARNs."
  }
}

variable "slack_webhook_secret_arn" {
  description = "Secrets Manager secret holding the Slack incoming-webhook URL (bare, or JSON {\"url\": …}). The module never takes the URL itself, so it never lands in state. A partial ARN (without the random `-XXXXXX` suffix) is granted with its suffix wildcard."
  type        = string
  default     = null
  validation {
    condition     = var.slack_webhook_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.slack_webhook_secret_arn))
    error_message = "slack_webhook_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "slack_bot_token_secret_arn" {
  description = "Secrets Manager secret holding a Slack bot token (xoxb-…, bare or JSON {\"bot_token\": …}) with chat:write: slack_channel and the routes' slack_channels then get one message per incident, updated in place with a thread. The token never passes through Terraform."
  type        = string
  default     = null
  validation {
    condition     = var.slack_bot_token_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.slack_bot_token_secret_arn))
    error_message = "slack_bot_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "slack_channel" {
  description = "SLACK_CHANNEL: the default channel (ID like C0123ABCD, or #name) for the Web API; needs slack_bot_token_secret_arn and the bot in the channel."
  type        = string
  default     = null
  validation {
    condition     = var.slack_channel == null || can(regex("^#?[^\\s,#]{1,80}$", var.slack_channel))
    error_message = "slack_channel must be a channel ID or #name."
  }
}

variable "sns_topic_arn" {
  description = "An existing SNS topic for notifications. Null: the module creates one, encrypted with kms_key_arn or a key of its own that CloudWatch alarms may use (the AWS-managed alias/aws/sns key refuses them). An existing topic under a customer key: its key policy must let cloudwatch.amazonaws.com use it, and the functions' roles are granted kms_key_arn."
  type        = string
  default     = null
}

variable "notify_routes" {
  description = "NOTIFY_ROUTES: routing rules, a JSON list (see docs/notifications.md): SNS topics, Slack webhooks and channels, PagerDuty and Teams destinations, mentions, and each route's storm settings (a digest instead of a flood: threshold, window, update interval, PagerDuty per storm or per source). The topics and secrets the rules name are granted (sns:Publish, secretsmanager:GetSecretValue), and nothing else."
  type        = string
  default     = ""
  validation {
    condition     = var.notify_routes == "" || (startswith(trimspace(var.notify_routes), "[") && can(jsondecode(var.notify_routes)))
    error_message = "notify_routes must be a JSON list."
  }
  # The function checks the whole at init; the storm settings are checked here too, at plan.
  validation {
    condition = alltrue([for r in try(jsondecode(var.notify_routes), []) : try(r.storm, null) == null || try(
      alltrue([for k in keys(r.storm) : contains(["digest", "sources", "window_seconds", "update_seconds", "pagerduty"], k)])
      && try(r.storm.sources, 10) >= 1 && try(r.storm.sources, 10) <= 10000
      && try(r.storm.window_seconds, 120) >= 10 && try(r.storm.window_seconds, 120) <= 3600
      && try(r.storm.update_seconds, 30) >= 1 && try(r.storm.update_seconds, 30) <= 300
      && contains(["storm", "source"], try(r.storm.pagerduty, "storm"))
    , false)])
    error_message = "notify_routes: a rule's storm takes digest (true or false), sources (1 to 10000), window_seconds (10 to 3600), update_seconds (1 to 300) and pagerduty (\"storm\" or \"source\")."
  }
}

variable "extra_sns_topic_arns" {
  description = "More SNS topics to grant sns:Publish on (those notify_routes names are granted already)."
  type        = list(string)
  default     = []
}

variable "extra_slack_webhook_secret_arns" {
  description = "More secrets to grant GetSecretValue on (those notify_routes names are granted already)."
  type        = list(string)
  default     = []
}

variable "create_dedupe_table" {
  description = "Create the DynamoDB dedupe table (TTL on) so duplicate events and retries never send a message twice."
  type        = bool
  default     = true
}

variable "rebalance_action" {
  description = "spot-interruption on a rebalance recommendation: ignore, notify or drain."
  type        = string
  default     = "notify"
  validation {
    condition     = contains(["ignore", "notify", "drain"], var.rebalance_action)
    error_message = "rebalance_action must be ignore, notify or drain."
  }
}

variable "max_drain_seconds" {
  description = "asg-lifecycle: longest drain before the action is completed anyway."
  type        = number
  default     = 3600
  validation {
    condition     = var.max_drain_seconds >= 0 && var.max_drain_seconds <= 172800
    error_message = "max_drain_seconds must be between 0 and 172800 (48 h, the lifecycle action limit)."
  }
}

variable "drain_timeout_result" {
  description = "CONTINUE or ABANDON when the drain budget runs out."
  type        = string
  default     = "CONTINUE"
  validation {
    condition     = contains(["CONTINUE", "ABANDON"], var.drain_timeout_result)
    error_message = "drain_timeout_result must be CONTINUE or ABANDON."
  }
}

variable "launch_timeout_seconds" {
  description = "asg-lifecycle: how long a launching instance may take to join its ECS cluster."
  type        = number
  default     = 600
  validation {
    condition     = var.launch_timeout_seconds >= 0 && var.launch_timeout_seconds <= 172800
    error_message = "launch_timeout_seconds must be between 0 and 172800."
  }
}

variable "launch_timeout_result" {
  description = "What asg-lifecycle answers when a launch it watched did not join its cluster in time. The launch hook's own default result (fleetguard down or failing) is always CONTINUE, so a broken fleetguard never blocks scale-out."
  type        = string
  default     = "ABANDON"
  validation {
    condition     = contains(["CONTINUE", "ABANDON"], var.launch_timeout_result)
    error_message = "launch_timeout_result must be CONTINUE or ABANDON."
  }
}

variable "rebalance_undo_seconds" {
  description = "With rebalance_action = \"drain\": how long a drain for a rebalance recommendation is held when no interruption follows, before asg-lifecycle sets the container instance ACTIVE again."
  type        = number
  default     = 3600
  validation {
    condition     = var.rebalance_undo_seconds >= 0 && var.rebalance_undo_seconds <= 172800
    error_message = "rebalance_undo_seconds must be from 0 to 172800."
  }
}

variable "maintenance_action" {
  description = "instance-maintenance: what is done before AWS retires, stops or reboots an instance. `replace`: an instance in an Auto Scaling group with a terminate hook is drained, then terminated with the desired capacity kept so the group launches a replacement (others are drained); `drain`: ECS container instance DRAINING and deregistered from its target groups; `notify`: messages only. A reboot is always drained, and put back after its window."
  type        = string
  default     = "replace"
  validation {
    condition     = contains(["notify", "drain", "replace"], var.maintenance_action)
    error_message = "maintenance_action must be notify, drain or replace."
  }
}

variable "maintenance_lead_seconds" {
  description = "instance-maintenance: how long before a scheduled change's window the instance is taken out of service (through an EventBridge Scheduler one-time schedule). A window closer than this is acted on at once."
  type        = number
  default     = 1800
  validation {
    condition     = var.maintenance_lead_seconds >= 60 && var.maintenance_lead_seconds <= 604800
    error_message = "maintenance_lead_seconds must be from 60 to 604800 (a week)."
  }
}

variable "launch_failure_window_seconds" {
  description = "asg-lifecycle: failed launches of a group are announced once in this long (needs the dedupe table)."
  type        = number
  default     = 3600
  validation {
    condition     = var.launch_failure_window_seconds >= 60 && var.launch_failure_window_seconds <= 172800
    error_message = "launch_failure_window_seconds must be from 60 to 172800."
  }
}

variable "create_dashboard" {
  description = "A CloudWatch dashboard of the fleet's interruption picture: Spot interruptions, rebalance recommendations, scheduled maintenance and launch failures per pool, drains and their durations, forced completions, failed actions."
  type        = bool
  default     = true
}

variable "report_success" {
  description = "ecs-deployment: also report deployments that completed normally."
  type        = bool
  default     = false
}

variable "report_task_failures" {
  description = "ecs-deployment: also report essential-container failures outside deployments."
  type        = bool
  default     = false
}

variable "dry_run" {
  description = "Read, log and notify; mutate nothing."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the functions' log groups."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "log_level" {
  description = "Functions' log level (Lambda's application log level)."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}

variable "system_log_level" {
  description = "Lambda's system log level (its START, END and REPORT lines and platform messages)."
  type        = string
  default     = "WARN"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARN"], var.system_log_level)
    error_message = "system_log_level must be DEBUG, INFO or WARN."
  }
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for logs, the SNS topic, the DLQ, the dedupe table and environment variables, by key ARN (arn:aws:kms:<region>:<account>:key/<key id>; IAM grants cannot use an alias). Its key policy must allow logs.<region>.amazonaws.com (see docs/deploy.md). Null: AWS-managed keys."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a key ARN (arn:aws:kms:<region>:<account>:key/<key id>), not an alias: IAM grants on an alias ARN do not cover the key."
  }
}

variable "extra_kms_key_arns" {
  description = "Further KMS keys the functions may use (kms:Decrypt, kms:GenerateDataKey): the keys of route topics and secrets encrypted under other customer keys. Key ARNs only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for k in var.extra_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", k))])
    error_message = "extra_kms_key_arns: key ARNs only (arn:aws:kms:<region>:<account>:key/<key id>), not aliases."
  }
}

variable "create_lifecycle_hooks" {
  description = "Create fleetguard's terminate hook (and the launch hook for groups in ecs_cluster_for_group) on auto_scaling_group_names. Needs asg-lifecycle enabled and dry_run off: hooks nothing completes would hold every launch and termination for the whole heartbeat timeout."
  type        = bool
  default     = false
}

variable "ecs_cluster_for_group" {
  description = "Group name => the ECS cluster (name or ARN) its instances join: gets a launch hook whose metadata names the cluster, so launches are held until the instance joined. The cluster is added to ecs_cluster_names."
  type        = map(string)
  default     = {}
}

variable "lifecycle_hook_heartbeat_timeout" {
  description = "Heartbeat timeout of the created hooks, seconds (the sweep heartbeats within it; 600 or more, so a skipped sweep and a short Auto Scaling outage cannot let a hook expire)."
  type        = number
  default     = 600
  validation {
    condition     = var.lifecycle_hook_heartbeat_timeout >= 600 && var.lifecycle_hook_heartbeat_timeout <= 7200
    error_message = "lifecycle_hook_heartbeat_timeout must be between 600 and 7200: under 600 s, a skipped sweep and two minutes of RecordLifecycleActionHeartbeat failing let AWS expire the hook (the fleet simulator found it)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency by function (keys as in zip_paths), for example { \"alarm-fanout\" = 5 } so that an alarm storm cannot take the concurrency the drain functions need. Empty: none reserved. Lambda keeps 100 of the account's concurrency unreserved, so reserving N needs a Regional concurrency quota of at least 100 + N plus what other functions reserve (new accounts may start at 10: request an increase first)."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for f, n in var.reserved_concurrency : contains(["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"], f) && n >= 1 && floor(n) == n])
    error_message = "reserved_concurrency: keys are function names (spot-interruption, asg-lifecycle, ecs-deployment, alarm-fanout, instance-maintenance), values whole numbers of at least 1 (leave a function out to reserve nothing)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "function_role_arns" {
  description = "Function name => an IAM role of your own for it (bring your own role); the module then creates no role or policy for that function. The role needs at least the policy the module would attach (see the README)."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary set on every role the module creates."
  type        = string
  default     = null
}

variable "async_invoke" {
  description = "Function name (or \"asg-lifecycle-sweep\") => Lambda's asynchronous retries and maximum event age, overriding the defaults: spot-interruption 2 and 300 s (a Spot warning is stale in minutes), asg-lifecycle 2 and 3600 s, its minutely sweep 0 and 60 s (the next minute's sweep does the work again), ecs-deployment and alarm-fanout 2 and 3600 s. EventBridge's own retries of each rule use the same age."
  type = map(object({
    maximum_retry_attempts       = number
    maximum_event_age_in_seconds = number
  }))
  default = {}
  validation {
    condition     = alltrue([for v in values(var.async_invoke) : v.maximum_retry_attempts >= 0 && v.maximum_retry_attempts <= 2 && v.maximum_event_age_in_seconds >= 60 && v.maximum_event_age_in_seconds <= 21600])
    error_message = "async_invoke: retries 0 to 2, maximum event age 60 to 21600 seconds (Lambda's limits)."
  }
}

variable "alarm_event_rule" {
  description = "alarm-fanout takes CloudWatch alarm state changes from EventBridge (narrowed by alarm_name_prefixes)."
  type        = bool
  default     = true
}

variable "alarm_name_prefixes" {
  description = "Only alarms whose names start with one of these reach alarm-fanout through EventBridge. Empty: every alarm of the account and region (the module's own failed-events alarm is always added)."
  type        = list(string)
  default     = []
}

variable "alarm_sns_topic_arns" {
  description = "SNS topics your alarms already notify: alarm-fanout is subscribed to each (the SNS-wrapped alarm input)."
  type        = list(string)
  default     = []
}

variable "alarm_action_source_arns" {
  description = "Alarm ARNs (wildcards allowed, e.g. arn:aws:cloudwatch:eu-west-1:111122223333:alarm:shop-*) that may invoke alarm-fanout directly as their alarm action."
  type        = list(string)
  default     = []
}

variable "pagerduty_events_url" {
  description = "PagerDuty's Events API v2 endpoint (PAGERDUTY_EVENTS_URL). Null: https://events.pagerduty.com/v2/enqueue; an account in PagerDuty's EU service region uses https://events.eu.pagerduty.com/v2/enqueue."
  type        = string
  default     = null
  validation {
    condition     = var.pagerduty_events_url == null || startswith(coalesce(var.pagerduty_events_url, "-"), "https://")
    error_message = "pagerduty_events_url must be an https:// URL."
  }
}

variable "slack_api_url" {
  description = "Slack's Web API base (SLACK_API_URL). Null: https://slack.com/api/; GovSlack workspaces use https://slack-gov.com/api/."
  type        = string
  default     = null
  validation {
    condition     = var.slack_api_url == null || startswith(coalesce(var.slack_api_url, "-"), "https://")
    error_message = "slack_api_url must be an https:// URL."
  }
}

variable "slack_max_attempts" {
  description = "Attempts per web request to Slack, PagerDuty and Teams (SLACK_MAX_ATTEMPTS), within the invocation's remaining time. Null: 5."
  type        = number
  default     = null
  validation {
    condition     = var.slack_max_attempts == null || (coalesce(var.slack_max_attempts, 1) >= 1 && coalesce(var.slack_max_attempts, 1) <= 20 && floor(coalesce(var.slack_max_attempts, 1)) == coalesce(var.slack_max_attempts, 1))
    error_message = "slack_max_attempts must be a whole number from 1 to 20."
  }
}

variable "muted_alarms" {
  description = "alarm-fanout, an alarm muted by an alarm mute rule (MUTED_ALARMS): skip or notify. Null: skip."
  type        = string
  default     = null
  validation {
    condition     = var.muted_alarms == null || contains(["skip", "notify"], coalesce(var.muted_alarms, "skip"))
    error_message = "muted_alarms must be skip or notify."
  }
}

variable "suppressed_alarms" {
  description = "alarm-fanout, a composite alarm whose actions a suppressor suppresses (SUPPRESSED_ALARMS): skip or notify. Null: skip."
  type        = string
  default     = null
  validation {
    condition     = var.suppressed_alarms == null || contains(["skip", "notify"], coalesce(var.suppressed_alarms, "skip"))
    error_message = "suppressed_alarms must be skip or notify."
  }
}

variable "service_alert_window_seconds" {
  description = "ecs-deployment: at most one impaired-service alert per service and event name in this window (SERVICE_ALERT_WINDOW_SECONDS). Null: 900."
  type        = number
  default     = null
  validation {
    condition     = var.service_alert_window_seconds == null || (coalesce(var.service_alert_window_seconds, 1) >= 1 && coalesce(var.service_alert_window_seconds, 1) <= 604800)
    error_message = "service_alert_window_seconds must be from 1 to 604800."
  }
}

variable "tls_roots" {
  description = "Root certificates for every HTTPS call (TLS_ROOTS): bundled (Mozilla's, compiled in) or system (the runtime's; for a TLS-inspecting proxy whose root you add to the image). Null: bundled."
  type        = string
  default     = null
  validation {
    condition     = var.tls_roots == null || contains(["bundled", "system"], coalesce(var.tls_roots, "bundled"))
    error_message = "tls_roots must be bundled or system."
  }
}

# ---------------------------------------------------------------- organization-wide (a hub)

variable "member_account_ids" {
  description = "Make this deployment an organization's hub for these member accounts (MEMBER_ACCOUNTS): their forwarded events are acted on in them through member_role_name. Empty (and no organization_id): standalone."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for a in var.member_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "member_account_ids: 12-digit account ids."
  }
}

variable "organization_id" {
  description = "Make this deployment the hub for every account of this organization (ORGANIZATION_ID): its bus admits their events, and its functions may assume member_role_name in any of them. Use member_account_ids or this, not both."
  type        = string
  default     = null
  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", coalesce(var.organization_id, "o-0000000000")))
    error_message = "organization_id: o- followed by 10 to 32 lowercase letters or digits."
  }
}

variable "member_role_name" {
  description = "The role each member account holds for the hub (MEMBER_ROLE_NAME); infra/modules/member creates it."
  type        = string
  default     = "fleetguard-member"
  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.member_role_name))
    error_message = "member_role_name: an IAM role name, 1 to 64 of A-Z a-z 0-9 + = , . @ _ -."
  }
}

variable "account_names" {
  description = "Account id => the name messages show for it (ACCOUNT_NAMES), e.g. { \"111122223333\" = \"payments-prod\" }."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for a, n in var.account_names : can(regex("^[0-9]{12}$", a)) && length(n) > 0 && length(n) <= 256])
    error_message = "account_names: 12-digit account ids to names of 1 to 256 characters."
  }
}

variable "console_shortcut_url" {
  description = "The AWS access portal URL of IAM Identity Center (CONSOLE_SHORTCUT_URL, https://d-….awsapps.com/start): console links in messages open the event's account through it. Needs console_role_name."
  type        = string
  default     = null
}

variable "console_role_name" {
  description = "The permission set console links open the account in (CONSOLE_ROLE_NAME), with console_shortcut_url."
  type        = string
  default     = null
}
