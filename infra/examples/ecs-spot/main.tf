# ECS on EC2 Spot behind a capacity provider: one task per instance, the deployment circuit
# breaker with rollback, and fleetguard draining on Spot warnings and scale-in (like a
# face-recognition worker fleet). Apply: `make build`, then `terraform init && terraform apply`.

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

variable "subnet_ids" {
  description = "Private subnets for the instances."
  type        = list(string)
}

variable "image_id" {
  description = "ECS-optimized AMI (the SSM parameter /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id)."
  type        = string
}

variable "zip_paths" {
  description = "Function name => zip (default: the `make build` outputs in this checkout)."
  type        = map(string)
  default     = {}
}

variable "worker_image" {
  description = "The worker container image."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:stable"
}

locals {
  name = "facerec"
  zips = merge({ for f in ["spot-interruption", "asg-lifecycle", "ecs-deployment", "instance-maintenance"] : f => "${path.module}/../../../target/lambda/${f}/bootstrap.zip" }, var.zip_paths)
}

resource "aws_ecs_cluster" "this" {
  name = "${local.name}-cluster"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_iam_role" "instance" {
  name = "${local.name}-instance"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy_attachment" "instance" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${local.name}-instance"
  role = aws_iam_role.instance.name
}

resource "aws_launch_template" "worker" {
  name_prefix   = "${local.name}-"
  image_id      = var.image_id
  instance_type = "g4dn.xlarge"
  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }
  metadata_options {
    http_tokens = "required"
  }
  user_data = base64encode(<<-EOT
    #!/bin/bash
    echo ECS_CLUSTER=${aws_ecs_cluster.this.name} >> /etc/ecs/ecs.config
    EOT
  )
}

resource "aws_autoscaling_group" "workers" {
  name                  = "${local.name}-workers"
  min_size              = 0
  max_size              = 20
  vpc_zone_identifier   = var.subnet_ids
  protect_from_scale_in = false
  capacity_rebalance    = true

  mixed_instances_policy {
    instances_distribution {
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.worker.id
        version            = "$Latest"
      }
      override {
        instance_type = "g4dn.xlarge"
      }
      override {
        instance_type = "g5.xlarge"
      }
    }
  }

  tag {
    key                 = "fleetguard:managed"
    value               = "true"
    propagate_at_launch = false
  }
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_ecs_capacity_provider" "spot" {
  name = "${local.name}-spot"
  auto_scaling_group_provider {
    auto_scaling_group_arn = aws_autoscaling_group.workers.arn
    # fleetguard drains instead of ECS managed draining and termination protection.
    managed_draining               = "DISABLED"
    managed_termination_protection = "DISABLED"
    managed_scaling {
      status          = "ENABLED"
      target_capacity = 100
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = [aws_ecs_capacity_provider.spot.name]
  default_capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.spot.name
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${local.name}-worker"
  requires_compatibilities = ["EC2"]
  network_mode             = "bridge"
  container_definitions = jsonencode([{
    name      = "worker"
    image     = var.worker_image
    essential = true
    memory    = 14000
    command   = ["sh", "-c", "while true; do sleep 60; done"]
    # The worker writes only to its volume-free scratch in memory.
    readonlyRootFilesystem = true
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = "/ecs/${local.name}-worker"
        awslogs-region        = var.region
        awslogs-stream-prefix = "worker"
        awslogs-create-group  = "true"
      }
    }
  }])
}

resource "aws_ecs_service" "worker" {
  name            = "${local.name}-worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker.arn
  desired_count   = 2
  # One task per instance.
  placement_constraints {
    type = "distinctInstance"
  }
  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.spot.name
    weight            = 1
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 100
}

# The Slack webhook lives in this secret; put its value with
#   aws secretsmanager put-secret-value --secret-id facerec/slack-webhook --secret-string '{"url": "https://hooks.slack.com/services/…"}'
# so the URL never enters Terraform state.
resource "aws_secretsmanager_secret" "slack" {
  name = "${local.name}/slack-webhook"
  #checkov:skip=CKV2_AWS_57:a webhook URL cannot be rotated by Secrets Manager
  #checkov:skip=CKV_AWS_149:the default aws/secretsmanager key is enough for a webhook URL
}

module "fleetguard" {
  source = "../.."

  functions = {
    alarm_fanout = false
  }
  zip_paths                = local.zips
  ecs_cluster_names        = [aws_ecs_cluster.this.name]
  auto_scaling_group_names = [aws_autoscaling_group.workers.name]
  managed_asg_tag          = "fleetguard:managed=true"
  create_lifecycle_hooks   = true
  ecs_cluster_for_group    = { (aws_autoscaling_group.workers.name) = aws_ecs_cluster.this.name }
  slack_webhook_secret_arn = aws_secretsmanager_secret.slack.arn
  rebalance_action         = "drain"
  # Face recognition jobs finish within 20 minutes.
  max_drain_seconds = 1800
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
