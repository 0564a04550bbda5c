# ECS Fargate services with CloudWatch alarms routed by severity: critical and high to Slack and to
# an on-call SNS email topic, the rest to Slack only (like a web shop on Fargate). ecs-deployment
# reports failed deployments and rollbacks; alarm-fanout routes the alarms.

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

variable "oncall_email" {
  type    = string
  default = "oncall@example.com"
}

variable "zip_paths" {
  description = "Function name => zip (default: the cargo lambda build outputs)."
  type        = map(string)
  default     = {}
}

variable "subnet_ids" {
  description = "Subnets of the services; empty: the default VPC's."
  type        = list(string)
  default     = []
}

locals {
  name    = "shop"
  subnets = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.default.ids
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

resource "aws_iam_role" "task_execution" {
  name = "${local.name}-task-execution"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ecs-tasks.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy_attachment" "task_execution" {
  role       = aws_iam_role.task_execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/ecs/${local.name}-api"
  retention_in_days = 30
  #checkov:skip=CKV_AWS_338:30 days is enough for application logs in this example
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest; a customer key is optional
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${local.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = aws_iam_role.task_execution.arn
  container_definitions = jsonencode([{
    name                   = "api"
    image                  = "public.ecr.aws/docker/library/busybox:stable"
    command                = ["httpd", "-f", "-p", "80", "-h", "/etc"]
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 80 }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.api.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "api"
      }
    }
  }])
}

resource "aws_ecs_service" "api" {
  name            = "api"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.api.arn
  desired_count   = 2
  capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = 3
  }
  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
    base              = 1
  }
  network_configuration {
    subnets          = local.subnets
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

resource "aws_ecs_cluster" "this" {
  name = "${local.name}-cluster"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_sns_topic" "oncall" {
  name              = "${local.name}-oncall"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "oncall" {
  topic_arn = aws_sns_topic.oncall.arn
  protocol  = "email"
  endpoint  = var.oncall_email
  # Only what matters at 3 a.m.
  filter_policy = jsonencode({ severity = ["critical", "high"] })
}

# Put the webhook URL with `aws secretsmanager put-secret-value`; it never enters state.
resource "aws_secretsmanager_secret" "slack" {
  name = "${local.name}/slack-webhook"
  #checkov:skip=CKV2_AWS_57:a webhook URL cannot be rotated by Secrets Manager
  #checkov:skip=CKV_AWS_149:the default aws/secretsmanager key is enough for a webhook URL
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${local.name}-api-5xx"
  alarm_description   = "The shop API answers 5xx."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = { severity = "critical", team = "shop" }
}

resource "aws_cloudwatch_metric_alarm" "api_cpu" {
  alarm_name          = "${local.name}-api-cpu"
  alarm_description   = "The shop API service runs hot."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = "api" }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  tags                = { severity = "medium", team = "shop" }
}

module "fleetguard" {
  source = "../.."

  functions = {
    spot_interruption = false
    asg_lifecycle     = false
  }
  zip_paths                = var.zip_paths
  ecs_cluster_names        = [aws_ecs_cluster.this.name]
  slack_webhook_secret_arn = aws_secretsmanager_secret.slack.arn
  extra_sns_topic_arns     = [aws_sns_topic.oncall.arn]
  notify_routes = jsonencode([
    {
      name     = "page"
      match    = { severities = ["critical", "high"] }
      continue = true
      # Subscribers filter on the severity attribute.
      sns_topic_arns       = [aws_sns_topic.oncall.arn]
      default_destinations = true
    },
    { name = "insufficient-data", match = { states = ["INSUFFICIENT_DATA"] }, drop = true },
  ])
}

output "fleetguard" {
  value = {
    functions = module.fleetguard.function_arns
    rules     = module.fleetguard.rule_arns
    topic     = module.fleetguard.sns_topic_arn
    dlq       = module.fleetguard.failed_events_queue_url
  }
}
