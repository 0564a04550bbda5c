# Two plain EC2 Auto Scaling groups behind an ALB, an API and a worker, Docker on EC2 without ECS
# (like an API + worker system): fleetguard deregisters instances from their target groups on
# Spot warnings and scale-in, and completes the lifecycle action once the targets are gone.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "image_id" {
  description = "An AMI with Docker that starts the app on boot."
  type        = string
}

variable "slack_webhook_secret_arn" {
  description = "An existing secret holding the Slack webhook URL."
  type        = string
}

resource "aws_lb_target_group" "api" {
  name                 = "api"
  port                 = 8080
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = 60
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB's HTTPS listener; targets speak HTTP inside the VPC
  health_check {
    path = "/health"
  }
}

resource "aws_launch_template" "app" {
  for_each      = toset(["api", "worker"])
  name_prefix   = "${each.key}-"
  image_id      = var.image_id
  instance_type = each.key == "api" ? "c6i.large" : "m6i.large"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "app" {
  for_each            = toset(["api", "worker"])
  name                = each.key
  min_size            = 1
  max_size            = 10
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = each.key == "api" ? [aws_lb_target_group.api.arn] : []
  launch_template {
    id      = aws_launch_template.app[each.key].id
    version = "$Latest"
  }
  tag {
    key                 = "fleetguard:managed"
    value               = "true"
    propagate_at_launch = false
  }
}

module "fleetguard" {
  source = "../.."

  functions = {
    ecs_deployment = false
  }
  auto_scaling_group_names = [for g in aws_autoscaling_group.app : g.name]
  managed_asg_tag          = "fleetguard:managed=true"
  create_lifecycle_hooks   = true
  slack_webhook_secret_arn = var.slack_webhook_secret_arn
  # The worker finishes its job within 10 minutes of SIGTERM.
  max_drain_seconds = 900
}

output "fleetguard" {
  value = module.fleetguard.function_arns
}
