# ECS Fargate and Fargate Spot services behind an ALB, rolling deploys with the circuit breaker's
# rollback, and CloudWatch alarms in three priorities routed by severity (like a web shop on
# Fargate): P0 (critical) and P1 (high) to Slack and to an on-call SNS email topic, P2 (medium) to
# Slack only. ecs-deployment reports failed deployments and rollbacks; alarm-fanout routes the
# alarms. Severity comes from the alarm's name (`shop-p0-…`), which every alarm event carries;
# tags reach events only with CloudWatch's alarm tag propagation.
# Apply: `make build`, then `terraform init && terraform apply`.

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

variable "oncall_email" {
  description = "Email of the on-call SNS subscription (P0 and P1)."
  type        = string
  default     = "oncall@example.com"
}

variable "zip_paths" {
  description = "Function name => zip (default: the `make build` outputs in this checkout)."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC of the services and load balancer; null: the default VPC."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of the services; empty: the default VPC's."
  type        = list(string)
  default     = []
}

locals {
  name    = "shop"
  vpc_id  = var.vpc_id != null ? var.vpc_id : data.aws_vpc.default[0].id
  subnets = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.default[0].ids
  zips    = merge({ for f in ["ecs-deployment", "alarm-fanout"] : f => "${path.module}/../../../target/lambda/${f}/bootstrap.zip" }, var.zip_paths)
}

data "aws_vpc" "default" {
  count   = var.vpc_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0
  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }
}

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "The shop ALB: HTTP from anywhere"
  vpc_id      = local.vpc_id
  ingress {
    description = "HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    description = "To the tasks"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8", "172.16.0.0/12"]
  }
  #checkov:skip=CKV_AWS_260:a public web shop takes HTTP on port 80; put an HTTPS listener with your certificate in front in production
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "The API tasks: port 80 from the ALB only"
  vpc_id      = local.vpc_id
  ingress {
    description     = "From the ALB"
    from_port       = 80
    to_port         = 80
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
  subnets                    = local.subnets
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  #checkov:skip=CKV_AWS_150:deletion protection would make `terraform destroy` of the example fail; turn it on in production
  #checkov:skip=CKV_AWS_91:access logs need a bucket with a policy for the ELB account; out of this example's scope
  #checkov:skip=CKV2_AWS_28:a WAF web ACL is the user's choice, not fleetguard's
  #checkov:skip=CKV2_AWS_20:the example serves HTTP to be tried; add an HTTPS listener with your certificate in production
  #checkov:skip=CKV2_AWS_76:a WAF web ACL (and its Log4j rule) is the user's choice, not fleetguard's
}

resource "aws_lb_target_group" "api" {
  name                 = "${local.name}-api"
  port                 = 80
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = local.vpc_id
  deregistration_delay = 30
  health_check {
    path = "/"
  }
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; tasks speak HTTP inside the VPC
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
  #checkov:skip=CKV_AWS_2:the example serves HTTP to be tried; add an HTTPS listener with your certificate in production
  #checkov:skip=CKV_AWS_103:no TLS on this trial listener
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
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = 80
  }
  # A rolling deploy that rolls back when the new tasks fail to become healthy.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener.http, aws_ecs_cluster_capacity_providers.this]
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = 1
    weight            = 1
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

# One Slack message per incident (a bot with chat:write, invited to the channel) and PagerDuty for
# P0/P1 (the service's Events API v2 integration key): their values are put the same way.
resource "aws_secretsmanager_secret" "slack_bot" {
  name = "${local.name}/slack-bot-token"
  #checkov:skip=CKV2_AWS_57:a Slack bot token is rotated in Slack, not by Secrets Manager
  #checkov:skip=CKV_AWS_149:the default aws/secretsmanager key is enough for a bot token
}

resource "aws_secretsmanager_secret" "pagerduty" {
  name = "${local.name}/pagerduty-routing-key"
  #checkov:skip=CKV2_AWS_57:a PagerDuty integration key is rotated in PagerDuty, not by Secrets Manager
  #checkov:skip=CKV_AWS_149:the default aws/secretsmanager key is enough for a routing key
}

# P0: customers get errors.
resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${local.name}-p0-api-5xx"
  alarm_description   = "The shop API answers 5xx."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = { severity = "critical", team = "shop" }
}

# P1: the service is short of healthy tasks.
resource "aws_cloudwatch_metric_alarm" "api_unhealthy" {
  alarm_name          = "${local.name}-p1-api-unhealthy-hosts"
  alarm_description   = "The shop API has unhealthy targets."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = { severity = "high", team = "shop" }
}

# P2: worth a look in working hours.
resource "aws_cloudwatch_metric_alarm" "api_cpu" {
  alarm_name          = "${local.name}-p2-api-cpu"
  alarm_description   = "The shop API service runs hot."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.api.name }
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
    # Fargate only: AWS maintains the hosts, no EC2 instance of ours is retired or stopped.
    instance_maintenance = false
  }
  zip_paths                = local.zips
  ecs_cluster_names        = [aws_ecs_cluster.this.name]
  alarm_name_prefixes      = ["${local.name}-"]
  slack_webhook_secret_arn = aws_secretsmanager_secret.slack.arn
  # The Web API: one message per alarm in #shop-alerts, updated from ALARM to OK.
  slack_bot_token_secret_arn = aws_secretsmanager_secret.slack_bot.arn
  slack_channel              = "#shop-alerts"
  # Severity by priority in the alarm name, then P0 and P1 to on-call (PagerDuty, triggered on ALARM
  # and resolved on OK, and the on-call topic) and Slack, the rest to Slack. The topics and secrets
  # the routes name are granted by the module.
  notify_routes = jsonencode([
    { name = "insufficient-data", match = { states = ["INSUFFICIENT_DATA"] }, drop = true },
    { name = "p0", match = { kinds = ["alarm"], alarm_names = ["${local.name}-p0-*"] }, severity = "critical", sns_topic_arns = [aws_sns_topic.oncall.arn], pagerduty_routing_key_secret_arns = [aws_secretsmanager_secret.pagerduty.arn], mention = "<!here>", default_destinations = true },
    { name = "p1", match = { kinds = ["alarm"], alarm_names = ["${local.name}-p1-*"] }, severity = "high", sns_topic_arns = [aws_sns_topic.oncall.arn], pagerduty_routing_key_secret_arns = [aws_secretsmanager_secret.pagerduty.arn], default_destinations = true },
    # When more than 10 P2 alarms open within 2 minutes (a zone or a dependency down): one digest
    # per destination, updated at most every minute at Teams, until they calm down.
    { name = "p2", match = { kinds = ["alarm"], alarm_names = ["${local.name}-p2-*"] }, severity = "medium", default_destinations = true, storm = { sources = 10, update_seconds = 60 } },
    # Deployments: a failure or rollback pages too.
    { name = "deployments", match = { kinds = ["deployment-failed", "rollback-started"] }, sns_topic_arns = [aws_sns_topic.oncall.arn], default_destinations = true },
  ])
}

output "alb_dns_name" {
  description = "The load balancer's DNS name."
  value       = aws_lb.this.dns_name
}

output "fleetguard" {
  description = "What fleetguard deployed: functions, roles, rules, topic, failure queue."
  value = {
    functions = module.fleetguard.function_arns
    roles     = module.fleetguard.role_arns
    rules     = module.fleetguard.rule_arns
    topic     = module.fleetguard.sns_topic_arn
    dlq       = module.fleetguard.failed_events_queue_url
  }
}
