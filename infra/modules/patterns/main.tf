# The EventBridge event patterns of every fleetguard rule, in one place. Pure: no provider, no
# resources. The root module and the pattern test (tests/tests/infra.rs) both render them here.

terraform {
  required_version = ">= 1.5"
}

variable "ecs_cluster_arns" {
  description = "Cluster ARNs the ECS rules are narrowed to; empty means every cluster."
  type        = list(string)
  default     = []
}

variable "auto_scaling_group_names" {
  description = "Groups the lifecycle rule is narrowed to; empty means every group."
  type        = list(string)
  default     = []
}

variable "lifecycle_hook_names" {
  description = "Hooks the lifecycle rule is narrowed to; empty means every hook."
  type        = list(string)
  default     = []
}

variable "rebalance_action" {
  description = "ignore, notify or drain: with ignore, rebalance recommendations are not routed at all."
  type        = string
  default     = "notify"
}

variable "alarm_name_prefixes" {
  description = "Alarms routed to alarm-fanout by name prefix; empty means every alarm."
  type        = list(string)
  default     = []
}

variable "report_task_failures" {
  description = "Route essential-container exits to ecs-deployment too."
  type        = bool
  default     = false
}

locals {
  # An `ECS * State Change` detail narrowed to the clusters, when any are given.
  cluster_filter = length(var.ecs_cluster_arns) > 0 ? { clusterArn = var.ecs_cluster_arns } : {}
  # Service ARNs are `…:service/<cluster>/<service>`: narrow deployment and service events by prefix.
  service_prefixes = [for c in var.ecs_cluster_arns : { prefix = "${replace(c, ":cluster/", ":service/")}/" }]
  resource_filter  = length(local.service_prefixes) > 0 ? { resources = local.service_prefixes } : {}

  patterns = {
    spot_interruption = {
      source = ["aws.ec2"]
      "detail-type" = concat(
        ["EC2 Spot Instance Interruption Warning"],
        var.rebalance_action == "ignore" ? [] : ["EC2 Instance Rebalance Recommendation"],
      )
    }
    asg_lifecycle_action = {
      source        = ["aws.autoscaling"]
      "detail-type" = ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"]
      detail = merge(
        length(var.auto_scaling_group_names) > 0 ? { AutoScalingGroupName = var.auto_scaling_group_names } : {},
        length(var.lifecycle_hook_names) > 0 ? { LifecycleHookName = var.lifecycle_hook_names } : {},
      )
    }
    # Wake-ups: a draining instance whose tasks stop, or a launching instance that joined.
    asg_lifecycle_container_instance = {
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Container Instance State Change"]
      detail        = merge(local.cluster_filter, { status = ["DRAINING", "ACTIVE"] })
    }
    asg_lifecycle_task_stopped = {
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Task State Change"]
      detail = merge(local.cluster_filter, {
        lastStatus           = ["STOPPED"]
        containerInstanceArn = [{ exists = true }]
      })
    }
    ecs_deployment_state = merge({
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Deployment State Change"]
    }, local.resource_filter)
    ecs_service_action = merge({
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Service Action"]
      detail        = { eventType = ["WARN", "ERROR"] }
    }, local.resource_filter)
    ecs_task_stopped = {
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Task State Change"]
      detail = merge(local.cluster_filter, {
        lastStatus = ["STOPPED"]
        stopCode   = concat(["SpotInterruption"], var.report_task_failures ? ["EssentialContainerExited"] : [])
      })
    }
    # AWS Health scheduled changes of EC2 (retirement, stop, reboot, maintenance): the only Health
    # events acted on. The rule sees the Region's events (Health delivers per Region).
    instance_maintenance_health = {
      source        = ["aws.health"]
      "detail-type" = ["AWS Health Event"]
      detail = {
        service           = ["EC2"]
        eventTypeCategory = ["scheduledChange"]
      }
    }
    # Instances on their way out outside any hook (people, scripts, Spot stops, AWS retirement),
    # and running again (a plain EC2 instance's deregistration of ours is put back).
    instance_maintenance_state = {
      source        = ["aws.ec2"]
      "detail-type" = ["EC2 Instance State-change Notification"]
      detail        = { state = ["stopping", "shutting-down", "running"] }
    }
    # A group's own troubles: launches that failed, instance refreshes that went wrong.
    asg_lifecycle_group_events = {
      source = ["aws.autoscaling"]
      "detail-type" = [
        "EC2 Instance Launch Unsuccessful",
        "EC2 Auto Scaling Instance Refresh Failed",
        "EC2 Auto Scaling Instance Refresh Cancelled",
        { prefix = "EC2 Auto Scaling Instance Refresh Rollback" },
      ]
      detail = length(var.auto_scaling_group_names) > 0 ? { AutoScalingGroupName = var.auto_scaling_group_names } : {}
    }
    alarm_fanout = {
      source        = ["aws.cloudwatch"]
      "detail-type" = ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"]
      detail        = length(var.alarm_name_prefixes) > 0 ? { alarmName = [for p in var.alarm_name_prefixes : { prefix = p }] } : {}
    }
  }

  # Which function each rule feeds.
  targets = {
    spot_interruption                = "spot-interruption"
    asg_lifecycle_action             = "asg-lifecycle"
    asg_lifecycle_container_instance = "asg-lifecycle"
    asg_lifecycle_task_stopped       = "asg-lifecycle"
    ecs_deployment_state             = "ecs-deployment"
    ecs_service_action               = "ecs-deployment"
    ecs_task_stopped                 = "ecs-deployment"
    alarm_fanout                     = "alarm-fanout"
    instance_maintenance_health      = "instance-maintenance"
    instance_maintenance_state       = "instance-maintenance"
    asg_lifecycle_group_events       = "asg-lifecycle"
  }
}

output "patterns" {
  description = "Rule name suffix => event pattern (JSON). An empty `detail` is dropped."
  value = {
    for k, p in local.patterns : k => jsonencode({
      for field, v in p : field => v if !(field == "detail" && length(try(keys(v), [])) == 0)
    })
  }
}

output "targets" {
  description = "Rule name suffix => the function it feeds."
  value       = local.targets
}
