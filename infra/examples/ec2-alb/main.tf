# Two plain EC2 Auto Scaling groups behind an Application Load Balancer, an API (On-Demand) and
# workers (Spot), Docker on EC2 without ECS (like an API + worker system). fleetguard deregisters
# instances from their target groups on Spot warnings and scale-in and completes the lifecycle
# action once the targets are gone; CPU alarms go to an SNS topic and, through alarm-fanout, to
# Slack. Apply: `make build`, then `terraform init && terraform apply`.

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
  description = "AWS Region."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "The VPC of the load balancer and instances."
  type        = string
}

variable "subnet_ids" {
  description = "At least two subnets in different Availability Zones, for the load balancer and the instances."
  type        = list(string)
}

variable "image_id" {
  description = "An AMI with Docker that starts the app on boot."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener; null: an HTTP listener only (for trying the example)."
  type        = string
  default     = null
}

variable "slack_webhook_secret_arn" {
  description = "An existing secret holding the Slack webhook URL."
  type        = string
}

variable "zip_paths" {
  description = "Function name => zip (default: the `make build` outputs in this checkout)."
  type        = map(string)
  default     = {}
}

locals {
  name   = "shop"
  groups = toset(["api", "worker"])
  zips   = merge({ for f in ["spot-interruption", "asg-lifecycle", "alarm-fanout", "instance-maintenance"] : f => "${path.module}/../../../target/lambda/${f}/bootstrap.zip" }, var.zip_paths)
}

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "The shop ALB: HTTP(S) from anywhere"
  vpc_id      = var.vpc_id
  ingress {
    description = "HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    description = "HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "To the API instances"
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
  #checkov:skip=CKV_AWS_260:a public web shop takes HTTP on port 80 to redirect or serve it
}

resource "aws_security_group" "app" {
  name        = "${local.name}-app"
  description = "The API and worker instances: the app port from the ALB only"
  vpc_id      = var.vpc_id
  ingress {
    description     = "From the ALB"
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
  egress {
    description = "HTTPS out (image pulls, AWS APIs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "this" {
  name                       = "${local.name}-alb"
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  #checkov:skip=CKV_AWS_150:deletion protection would make `terraform destroy` of the example fail; turn it on in production
  #checkov:skip=CKV_AWS_91:access logs need a bucket with a policy for the ELB account; out of this example's scope
  #checkov:skip=CKV2_AWS_28:a WAF web ACL is the user's choice, not fleetguard's
  #checkov:skip=CKV2_AWS_20:HTTP is redirected to HTTPS when certificate_arn is given; without one the example serves HTTP to be tried
  #checkov:skip=CKV2_AWS_76:a WAF web ACL (and its Log4j rule) is the user's choice, not fleetguard's
}

resource "aws_lb_target_group" "api" {
  name                 = "${local.name}-api"
  port                 = 8080
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = 60
  health_check {
    path = "/health"
  }
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB's HTTPS listener; targets speak HTTP inside the VPC
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = var.certificate_arn == null ? "forward" : "redirect"
    target_group_arn = var.certificate_arn == null ? aws_lb_target_group.api.arn : null
    dynamic "redirect" {
      for_each = var.certificate_arn == null ? [] : [1]
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
  #checkov:skip=CKV_AWS_2:HTTP redirects to HTTPS when certificate_arn is given; without one the example serves HTTP to be tried
  #checkov:skip=CKV_AWS_103:the HTTPS listener uses a TLS 1.2+ policy; this one only redirects or serves the trial
}

resource "aws_lb_listener" "https" {
  count             = var.certificate_arn == null ? 0 : 1
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_launch_template" "app" {
  for_each               = local.groups
  name_prefix            = "${local.name}-${each.key}-"
  image_id               = var.image_id
  instance_type          = each.key == "api" ? "c6i.large" : "m6i.large"
  vpc_security_group_ids = [aws_security_group.app.id]
  metadata_options {
    http_tokens = "required"
  }
}

# The API on On-Demand behind the ALB; the workers on Spot across instance types.
resource "aws_autoscaling_group" "app" {
  for_each            = local.groups
  name                = "${local.name}-${each.key}"
  min_size            = 1
  max_size            = 10
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = each.key == "api" ? [aws_lb_target_group.api.arn] : []
  health_check_type   = each.key == "api" ? "ELB" : "EC2"
  capacity_rebalance  = each.key == "worker"

  mixed_instances_policy {
    instances_distribution {
      on_demand_percentage_above_base_capacity = each.key == "api" ? 100 : 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.app[each.key].id
        version            = "$Latest"
      }
      override {
        instance_type = each.key == "api" ? "c6i.large" : "m6i.large"
      }
      override {
        instance_type = each.key == "api" ? "c7i.large" : "m7i.large"
      }
    }
  }
  tag {
    key                 = "fleetguard:managed"
    value               = "true"
    propagate_at_launch = false
  }
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# CPU alarms go to the team's topic (email) and, through EventBridge and alarm-fanout, to Slack.
resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "alarms" {
  description         = "${local.name}: the alarm topic (CloudWatch alarms may use it)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "Account", Effect = "Allow", Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }, Action = "kms:*", Resource = "*" },
      { Sid = "CloudWatchAlarms", Effect = "Allow", Principal = { Service = "cloudwatch.amazonaws.com" }, Action = ["kms:Decrypt", "kms:GenerateDataKey*"], Resource = "*" },
    ]
  })
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  for_each            = local.groups
  alarm_name          = "${local.name}-${each.key}-cpu"
  alarm_description   = "The ${each.key} group runs hot."
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { AutoScalingGroupName = aws_autoscaling_group.app[each.key].name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

module "fleetguard" {
  source = "../.."

  functions = {
    ecs_deployment = false
  }
  zip_paths                = local.zips
  auto_scaling_group_names = [for g in aws_autoscaling_group.app : g.name]
  managed_asg_tag          = "fleetguard:managed=true"
  create_lifecycle_hooks   = true
  # The groups' own target groups are the whole deregistration scope.
  target_group_arns        = [aws_lb_target_group.api.arn]
  slack_webhook_secret_arn = var.slack_webhook_secret_arn
  alarm_name_prefixes      = ["${local.name}-"]
  # The worker finishes its job within 10 minutes of SIGTERM.
  max_drain_seconds = 900
}

output "alb_dns_name" {
  description = "The load balancer's DNS name."
  value       = aws_lb.this.dns_name
}

output "fleetguard" {
  description = "What fleetguard deployed: functions, roles, topic, failure queue."
  value = {
    functions = module.fleetguard.function_arns
    roles     = module.fleetguard.role_arns
    hooks     = module.fleetguard.lifecycle_hook_names
    topic     = module.fleetguard.sns_topic_arn
    dlq       = module.fleetguard.failed_events_queue_url
  }
}
