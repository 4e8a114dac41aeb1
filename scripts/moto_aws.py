"""moto_server, patched to answer as AWS does where moto 5.2 differs and the difference changes
what the provisioner's tests measure (shared/testing-aws.md, "Where moto 5.2 answers differently
from AWS"). Each patch names the AWS behaviour it restores; provisioner/tests/integration/
aws_behaviour.rs checks each against the running emulator. Run by scripts/moto-server with the
tools venv's Python; arguments are moto_server's.
"""

import sys

from moto.autoscaling import models as autoscaling
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.ecs import models as ecs
from moto.ecs.exceptions import ECSException, EcsClientException
from moto.elbv2 import models as elbv2


class AlreadyExists(AutoscalingClientError):
    code = "AlreadyExists"
    # moto names the service of an error from its class's module.
    __module__ = "moto.autoscaling.exceptions"


_list_tasks = ecs.EC2ContainerServiceBackend.list_tasks


def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
               service_name=None, desiredStatus=None):
    """ECS ListTasks: AWS lists only the tasks whose desired status is RUNNING unless asked for
    another, and with `serviceName` only that service's tasks (moto ignores it and lists stopped
    tasks too, so a stopped load-test worker looked like a task of the service)."""
    tasks = _list_tasks(self, cluster_str, container_instance, family, started_by, None,
                        desiredStatus or "RUNNING")
    if service_name:
        tasks = [t for t in tasks if getattr(t, "group", None) == f"service:{service_name}"]
    return tasks


_create_group = autoscaling.AutoScalingBackend.create_auto_scaling_group


def create_auto_scaling_group(self, name, *args, **kwargs):
    """Auto Scaling CreateAutoScalingGroup: AWS answers AlreadyExists for a name in use (moto
    replaced the group and orphaned its instances, so a create retried after a lost answer left
    instances no group owned)."""
    if name in self.autoscaling_groups:
        raise AlreadyExists(f"AutoScalingGroup by this name already exists - A group with the name {name} already exists")
    return _create_group(self, name, *args, **kwargs)


_create_load_balancer = elbv2.ELBv2Backend.create_load_balancer


def create_load_balancer(self, name, *args, **kwargs):
    """ELBv2 CreateLoadBalancer: AWS returns the existing load balancer of that name ("if you
    attempt to create multiple load balancers with the same settings, each call succeeds"); moto
    made a second one."""
    for lb in self.load_balancers.values():
        if lb.name == name:
            return lb
    return _create_load_balancer(self, name, *args, **kwargs)


_delete_capacity_provider = ecs.EC2ContainerServiceBackend.delete_capacity_provider


def delete_capacity_provider(self, name_or_arn):
    """ECS DeleteCapacityProvider of a provider that is gone: AWS answers a ClientException;
    moto crashed (AttributeError, an HTML 500 the SDK cannot read)."""
    if self._get_provider(name_or_arn) is None:
        raise EcsClientException("The specified capacity provider does not exist. Specify a valid name or ARN and try again.")
    return _delete_capacity_provider(self, name_or_arn)


_delete_cluster = ecs.EC2ContainerServiceBackend.delete_cluster


def delete_cluster(self, cluster_str):
    """ECS DeleteCluster: AWS refuses a cluster whose tasks are still running
    (ClusterContainsTasksException); moto deleted it, so a load-test worker left running by a
    killed run looked cleaned up."""
    cluster = self._get_cluster(cluster_str)
    if any(t.desired_status == "RUNNING" for t in self.tasks.get(cluster.name, {}).values()):
        raise ECSException("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
    return _delete_cluster(self, cluster_str)


ecs.EC2ContainerServiceBackend.list_tasks = list_tasks
ecs.EC2ContainerServiceBackend.delete_cluster = delete_cluster
autoscaling.AutoScalingBackend.create_auto_scaling_group = create_auto_scaling_group
elbv2.ELBv2Backend.create_load_balancer = create_load_balancer
ecs.EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
