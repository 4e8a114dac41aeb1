"""moto_server, patched to answer as AWS does where moto 5.2 differs and the difference changes
what the provisioner's tests measure (shared/testing-aws.md, "Where moto 5.2 answers differently
from AWS"). Each patch names the AWS behaviour it restores; provisioner/tests/integration/
emulator.rs checks each against the running emulator. Run by scripts/moto-server with the
tools venv's Python; arguments are moto_server's.
"""

import json
import os
import sys

from moto.applicationautoscaling import models as app_autoscaling
from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.autoscaling import models as autoscaling
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.ecs import models as ecs
from moto.ecs.exceptions import ECSException, EcsClientException
from moto.core.exceptions import JsonRESTError
from moto.elbv2 import models as elbv2
from moto.iam import access_control
from moto.iam import models as iam
from moto.iam.exceptions import NotFoundException as IAMNotFound


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


class ObjectNotFound(JsonRESTError):
    def __init__(self, message):
        super().__init__("ObjectNotFoundException", message)


def not_found_as_aws_says(delete):
    """Application Auto Scaling DeleteScalingPolicy and DeregisterScalableTarget of what is not
    there: AWS answers ObjectNotFoundException ("for any operation that deletes or deregisters a
    resource, this exception is thrown if the resource cannot be found"); moto answered
    ValidationException, which means a bad request."""

    def patched(self, *args, **kwargs):
        try:
            return delete(self, *args, **kwargs)
        except AWSValidationException as e:
            if e.message.startswith("No scal"):
                raise ObjectNotFound(e.message) from None
            raise

    return patched


_remove_role_from_instance_profile = iam.IAMBackend.remove_role_from_instance_profile


def remove_role_from_instance_profile(self, profile_name, role_name):
    """IAM RemoveRoleFromInstanceProfile of a role the profile no longer holds (a retry whose
    first answer was lost): AWS answers NoSuchEntity; moto crashed (ValueError, an HTML 500)."""
    profile = self.get_instance_profile(profile_name)
    if not any(r.name == role_name for r in profile.roles):
        raise IAMNotFound(f"Role {role_name} in InstanceProfile {profile_name} cannot be found.")
    return _remove_role_from_instance_profile(self, profile_name, role_name)


_iam_request_init = access_control.IAMRequestBase.__init__

# Services whose IAM prefix is not the name their requests are signed with.
IAM_PREFIX_OF_SIGNING_NAME = {"tagging": "tag"}

# The IAM action AWS authorizes each S3 operation by, where it is not the operation's name
# (shared with the policy tests: scripts/s3-iam-actions.json).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3-iam-actions.json")) as f:
    S3_IAM_ACTION = {k: v for k, v in json.load(f).items() if not k.startswith("_")}


def iam_request_init(self, *args, **kwargs):
    """IAM authorization under the action names AWS checks:
    - the Resource Groups Tagging API: AWS authorizes GetResources as `tag:GetResources` (the
      service's IAM prefix); moto as `tagging:GetResources` (the name the request is signed
      with), an action no policy can grant;
    - S3: AWS authorizes many operations by another name (PutPublicAccessBlock by
      `s3:PutBucketPublicAccessBlock`, PutBucketEncryption by `s3:PutEncryptionConfiguration`,
      HeadBucket by `s3:ListBucket`…); moto 5.2.6 authorizes each by its operation's name
      (5.2.5 by a table that took several for `s3:CreateBucket`), so a policy with AWS's names
      was refused and one with moto's would be accepted."""
    _iam_request_init(self, *args, **kwargs)
    service, _, action = self._action.partition(":")
    if service in IAM_PREFIX_OF_SIGNING_NAME:
        self._action = f"{IAM_PREFIX_OF_SIGNING_NAME[service]}:{action}"
    elif service == "s3" and action in S3_IAM_ACTION:
        self._action = S3_IAM_ACTION[action]


access_control.IAMRequestBase.__init__ = iam_request_init
iam.IAMBackend.remove_role_from_instance_profile = remove_role_from_instance_profile
app_autoscaling.ApplicationAutoscalingBackend.delete_scaling_policy = not_found_as_aws_says(
    app_autoscaling.ApplicationAutoscalingBackend.delete_scaling_policy)
app_autoscaling.ApplicationAutoscalingBackend.deregister_scalable_target = not_found_as_aws_says(
    app_autoscaling.ApplicationAutoscalingBackend.deregister_scalable_target)
ecs.EC2ContainerServiceBackend.list_tasks = list_tasks
ecs.EC2ContainerServiceBackend.delete_cluster = delete_cluster
autoscaling.AutoScalingBackend.create_auto_scaling_group = create_auto_scaling_group
elbv2.ELBv2Backend.create_load_balancer = create_load_balancer
ecs.EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
