# A member's small ECS-on-EC2 fleet: a cluster, and an Auto Scaling group of its instances in
# the default VPC (none running until you scale it out).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  description = "The group's name."
  type        = string
}

variable "cluster" {
  description = "The ECS cluster's name."
  type        = string
}

variable "image_id" {
  description = "ECS-optimized AMI."
  type        = string
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

resource "aws_ecs_cluster" "this" {
  name = var.cluster
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_iam_role" "instance" {
  name = "${var.name}-instance"
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
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
}

resource "aws_launch_template" "this" {
  name_prefix   = "${var.name}-"
  image_id      = var.image_id
  instance_type = "m6i.large"
  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }
  user_data = base64encode("#!/bin/bash\necho ECS_CLUSTER=${aws_ecs_cluster.this.name} >> /etc/ecs/ecs.config\n")
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "this" {
  name                = var.name
  min_size            = 0
  max_size            = 4
  desired_capacity    = 0
  vpc_zone_identifier = slice(data.aws_subnets.default.ids, 0, min(2, length(data.aws_subnets.default.ids)))
  launch_template {
    id      = aws_launch_template.this.id
    version = "$Latest"
  }
  tag {
    key                 = "fleetguard:managed"
    value               = "true"
    propagate_at_launch = true
  }
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

output "group_name" {
  description = "The group, for the member module."
  value       = aws_autoscaling_group.this.name
}
