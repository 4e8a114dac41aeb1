"""moto_server, patched to answer as AWS does where moto 5.2 differs and the difference changes
what the provisioner's tests measure (shared/testing-aws.md, "Where moto 5.2 answers differently
from AWS"). Each patch names the AWS behaviour it restores; provisioner/tests/integration/
emulator.rs checks each against the running emulator. Run by scripts/moto-server with the
tools venv's Python; arguments are moto_server's.
"""

import base64
import inspect
import json
import os
import re
import sys

from moto.applicationautoscaling import models as app_autoscaling
from moto.applicationautoscaling import responses as app_autoscaling_responses
from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.autoscaling import models as autoscaling
from moto.autoscaling import responses as autoscaling_responses
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow as utcnow_plain
from moto.moto_api._internal import mock_random as mock_random_plain
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import launch_templates
from moto.ecr import models as ecr
from moto.ecr.exceptions import InvalidParameterException as EcrInvalidParameter
from moto.ecs import models as ecs
from moto.ecs.exceptions import ECSException, EcsClientException
from moto.cloudwatch import models as cloudwatch
from moto.cloudwatch import responses as cloudwatch_responses
from moto.cloudwatch.exceptions import InvalidParameterValue as CloudWatchInvalidParameter
from moto.cloudwatch.exceptions import ValidationError as CloudWatchValidation
from moto.core.exceptions import JsonRESTError
from moto.secretsmanager import models as secretsmanager
from moto.secretsmanager.exceptions import ValidationException as SecretsValidation
from moto.ssm import models as ssm
from moto.ssm.exceptions import ValidationException as SsmValidation
from moto.elbv2 import models as elbv2
from moto.elbv2.exceptions import ValidationError as ElbValidation
from moto.iam import access_control
from moto.iam import models as iam
from moto.iam.exceptions import LimitExceededException as IAMLimitExceeded
from moto.iam.exceptions import NotFoundException as IAMNotFound
from moto.iam.exceptions import ValidationError as IAMValidationError
from moto.route53 import models as route53
from moto.route53.exceptions import Route53ClientError


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
    made a second one. A name over 32 characters is a ValidationError (moto took it)."""
    if len(name) > LIMITS["LOAD_BALANCER_NAME"]:
        raise ElbValidation(f"Load balancer name '{name}' cannot be longer than '{LIMITS['LOAD_BALANCER_NAME']}' characters")
    for lb in self.load_balancers.values():
        if lb.name == name:
            return lb
    return _create_load_balancer(self, name, *args, **kwargs)


_list_services = ecs.EC2ContainerServiceBackend.list_services


def list_services(self, cluster_str, *args, **kwargs):
    """ECS ListServices lists a cluster's services that are not deleted (moto listed a deleted,
    INACTIVE service as long as DescribeServices shows it, and the services of every cluster
    whose name ends with this one's)."""
    cluster = self._get_cluster(cluster_str)
    listed = {s.arn for s in self.services.values() if s.status != "INACTIVE" and s.cluster_arn == cluster.arn}
    return [arn for arn in _list_services(self, cluster_str, *args, **kwargs) if arn in listed]


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


_change_resource_record_sets = route53.Route53Backend.change_resource_record_sets


def change_resource_record_sets(self, zoneid, change_list):
    """Route 53 ChangeResourceRecordSets DELETE of a record that is not there: AWS refuses the
    batch (InvalidChangeBatch, "[Tried to delete resource record set [name='a.example.com.',
    type='A'] but it was not found]"); moto deleted nothing and answered success, so a retried
    delete never met AWS's answer."""
    zone = self.get_hosted_zone(zoneid)
    for change in change_list:
        record = change["ResourceRecordSet"]
        if change["Action"] != "DELETE" or "SetIdentifier" in record:
            continue
        name = record["Name"] if record["Name"].endswith(".") else record["Name"] + "."
        if not any(r.name == name and r.type == record["Type"] for r in zone.rrsets):
            raise Route53ClientError(
                "InvalidChangeBatch",
                f"[Tried to delete resource record set [name='{name}', type='{record['Type']}'] but it was not found]",
            )
    return _change_resource_record_sets(self, zoneid, change_list)


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




def _limits():
    """AWS's documented limits, as the one table stack/src/limits.rs holds them (`NAME: max`)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "stack", "src", "limits.rs")) as f:
        text = f.read()
    found = re.findall(r"pub const (\w+): Limit\s*=\s*Limit\s*\{[^}]*?max:\s*([\d_]+)", text)
    return {name: int(value.replace("_", "")) for name, value in found}


LIMITS = _limits()


def policy_size(document):
    """A policy's size as IAM counts it: its characters, whitespace not counted."""
    return sum(1 for c in document if not c.isspace())


def iam_name_within(value, field, limit):
    """IAM's answer to a name over its length limit."""
    if len(value) > limit:
        raise IAMValidationError(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit}")


def managed_policy_within(document):
    if policy_size(document) > LIMITS["IAM_MANAGED_POLICY"]:
        raise IAMLimitExceeded(f"Cannot exceed quota for PolicySize: {LIMITS['IAM_MANAGED_POLICY']}")


def trust_policy_within(document):
    if policy_size(document) > LIMITS["IAM_TRUST_POLICY"]:
        raise IAMLimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {LIMITS['IAM_TRUST_POLICY']}")


_put_role_policy = iam.IAMBackend.put_role_policy


def put_role_policy(self, role_name, policy_name, policy_json):
    """IAM PutRolePolicy: AWS refuses a policy that brings the role's inline policies together
    over 10,240 characters (whitespace not counted) with LimitExceeded and writes nothing; moto
    had no limit, so a 26,654-character deploy policy passed the suite and failed on AWS."""
    role = self.get_role(role_name)
    others = sum(policy_size(doc) for name, doc in role.policies.items() if name != policy_name)
    limit = LIMITS["IAM_ROLE_INLINE_POLICIES"]
    if others + policy_size(policy_json) > limit:
        raise IAMLimitExceeded(f"Maximum policy size of {limit} bytes exceeded for role {role_name}")
    iam_name_within(policy_name, "policyName", LIMITS["IAM_POLICY_NAME"])
    return _put_role_policy(self, role_name, policy_name, policy_json)


_create_policy = iam.IAMBackend.create_policy


def create_policy(self, description, path, policy_document, policy_name, tags):
    """IAM CreatePolicy: a managed policy over 6,144 characters (whitespace not counted) is
    LimitExceeded; a name over 128 characters a ValidationError (moto accepted both)."""
    iam_name_within(policy_name, "policyName", LIMITS["IAM_POLICY_NAME"])
    managed_policy_within(policy_document)
    return _create_policy(self, description, path, policy_document, policy_name, tags)


_create_policy_version = iam.IAMBackend.create_policy_version


def create_policy_version(self, policy_arn, policy_document, set_as_default):
    """IAM CreatePolicyVersion: the same size limit as CreatePolicy (moto had none)."""
    managed_policy_within(policy_document)
    return _create_policy_version(self, policy_arn, policy_document, set_as_default)


_attach_role_policy = iam.IAMBackend.attach_role_policy


def attach_role_policy(self, policy_arn, role_name):
    """IAM AttachRolePolicy: a role holds at most 10 managed policies (the default quota), and
    one more is LimitExceeded (moto attached any number)."""
    role = self.get_role(role_name)
    limit = LIMITS["IAM_ROLE_MANAGED_POLICIES"]
    if policy_arn not in role.managed_policies and len(role.managed_policies) >= limit:
        raise IAMLimitExceeded(f"Cannot exceed quota for PoliciesPerRole: {limit}")
    return _attach_role_policy(self, policy_arn, role_name)


_create_role = iam.IAMBackend.create_role


def create_role(self, role_name, assume_role_policy_document, *args, **kwargs):
    """IAM CreateRole: a name over 64 characters is a ValidationError and a trust policy over
    2,048 characters (whitespace not counted) LimitExceeded (moto accepted both)."""
    iam_name_within(role_name, "roleName", LIMITS["IAM_ROLE_NAME"])
    trust_policy_within(assume_role_policy_document)
    return _create_role(self, role_name, assume_role_policy_document, *args, **kwargs)


_update_assume_role_policy = iam.IAMBackend.update_assume_role_policy


def update_assume_role_policy(self, role_name, policy_document):
    """IAM UpdateAssumeRolePolicy: the trust policy's size limit, as CreateRole."""
    trust_policy_within(policy_document)
    return _update_assume_role_policy(self, role_name, policy_document)


_create_instance_profile = iam.IAMBackend.create_instance_profile


def create_instance_profile(self, name, *args, **kwargs):
    """IAM CreateInstanceProfile: a name over 128 characters is a ValidationError."""
    iam_name_within(name, "instanceProfileName", LIMITS["IAM_INSTANCE_PROFILE_NAME"])
    return _create_instance_profile(self, name, *args, **kwargs)


def arguments(original, self, args, kwargs):
    """The arguments of a call to a backend method, by name, however moto passed them."""
    return inspect.signature(original).bind(self, *args, **kwargs).arguments


def too_long(value, field, limit):
    """The form of AWS's validation message for a value over its length limit."""
    return (f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit}")


_put_parameter = ssm.SimpleSystemManagerBackend.put_parameter


def put_parameter(self, *args, **kwargs):
    """SSM PutParameter: a Standard-tier value over 4,096 characters is refused (moto took any
    size; the lease's record is one such parameter)."""
    a = arguments(_put_parameter, self, args, kwargs)
    limit = LIMITS["SSM_STANDARD_PARAMETER_VALUE"]
    if (a.get("tier") or "Standard") == "Standard" and len(a.get("value") or "") > limit:
        raise SsmValidation(
            f"Standard tier parameters support a maximum parameter value of {limit} characters. To create a larger "
            "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see "
            "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
    return _put_parameter(self, *args, **kwargs)


def secret_within(secret_string):
    limit = LIMITS["SECRET_VALUE"]
    if secret_string is not None and len(secret_string.encode()) > limit:
        raise SecretsValidation(too_long("*** Sensitive Data Redacted ***", "secretString", limit))


_create_secret = secretsmanager.SecretsManagerBackend.create_secret
_put_secret_value = secretsmanager.SecretsManagerBackend.put_secret_value


def create_secret(self, *args, **kwargs):
    """Secrets Manager CreateSecret: a value over 65,536 bytes is refused (moto took any size)."""
    secret_within(arguments(_create_secret, self, args, kwargs).get("secret_string"))
    return _create_secret(self, *args, **kwargs)


def put_secret_value(self, *args, **kwargs):
    """Secrets Manager PutSecretValue: the same limit as CreateSecret."""
    secret_within(arguments(_put_secret_value, self, args, kwargs).get("secret_string"))
    return _put_secret_value(self, *args, **kwargs)


_put_metric_alarm = cloudwatch.CloudWatchBackend.put_metric_alarm


# PutMetricAlarm's ExtendedStatistic, as its API reference lists the valid values: pNN.NN,
# tm/tc/ts/wm NN, IQM, PR(n:m) with n and m values of the metric, and TC/TM/TS/WM(X%:X%).
_BOUND = r"-?[0-9]+(?:\.[0-9]+)?"
_PERCENT = r"(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]+)?)"
EXTENDED_STATISTIC = re.compile(
    rf"^(?:p{_PERCENT}|(?:tm|tc|ts|wm){_PERCENT}|IQM|PR\((?:{_BOUND}:(?:{_BOUND})?|:{_BOUND})\)"
    rf"|(?:TC|TM|TS|WM)\((?:{_BOUND}%?)?:(?:{_BOUND}%?)?\))$")
PERCENTILE_RANK = re.compile(rf"^PR\(({_BOUND})?:({_BOUND})?\)$")


def put_metric_alarm(self, *args, **kwargs):
    """CloudWatch PutMetricAlarm: a name over 255 characters or more than 5 actions for one state
    is a ValidationError (moto took both); ExtendedStatistic takes the forms its API reference
    lists (moto refused all but percentiles, and took a malformed one such as `p` or `pr(:1)`)."""
    a = arguments(_put_metric_alarm, self, args, kwargs)
    extended = a.get("extended_statistic")
    if extended and not EXTENDED_STATISTIC.match(extended):
        raise CloudWatchInvalidParameter(f"The value {extended} for parameter ExtendedStatistic is not supported.")
    if len(a.get("name") or "") > LIMITS["ALARM_NAME"]:
        raise CloudWatchValidation(too_long(a["name"], "alarmName", LIMITS["ALARM_NAME"]))
    for field, key in [("alarmActions", "alarm_actions"), ("oKActions", "ok_actions"),
                       ("insufficientDataActions", "insufficient_data_actions")]:
        actions = a.get(key) or []
        if len(actions) > LIMITS["ALARM_ACTIONS"]:
            raise CloudWatchValidation(too_long(actions, field, LIMITS["ALARM_ACTIONS"]))
    if not extended or extended.startswith("p"):
        return _put_metric_alarm(self, *args, **kwargs)
    # moto took percentiles alone: past its check as one, then stored as given.
    named = {k: v for k, v in a.items() if k != "self"}
    alarm = _put_metric_alarm(self, **{**named, "extended_statistic": "p50"})
    alarm.extended_statistic = extended
    return alarm


_statistic = cloudwatch.Statistics.get_statistics_for_type


def get_statistics_for_type(self, stat):
    """CloudWatch's percentile rank PR(n:m): the percentage of the period's values above n and at
    most m ("Statistics definitions": the lower bound exclusive, the upper inclusive); moto
    answered nothing for it."""
    rank = PERCENTILE_RANK.match(stat or "")
    if not rank:
        return _statistic(self, stat)
    values = self.metric_single_values_list
    if not values:
        return None
    low = float(rank.group(1)) if rank.group(1) else float("-inf")
    high = float(rank.group(2)) if rank.group(2) else float("inf")
    return 100.0 * sum(1 for v in values if low < v <= high) / len(values)


def rule_names(rule):
    """The alarm names an alarm rule names: ALARM("a"), OK(b), INSUFFICIENT_DATA("c")."""
    import re
    return [m.group(2) or m.group(3) for m in re.finditer(r'(ALARM|OK|INSUFFICIENT_DATA)\(\s*(?:"([^"]+)"|([^)\s]+))\s*\)', rule or "")]


def put_composite_alarm(self):
    """CloudWatch PutCompositeAlarm: every alarm its rule names must exist ("Could not save the
    composite alarm as alarms [...] in the alarm rule do not exist"); served by moto's
    PutMetricAlarm, which reads AlarmRule."""
    missing = [n for n in rule_names(self._get_param("AlarmRule")) if n not in self.cloudwatch_backend.alarms]
    if missing:
        raise CloudWatchValidation(
            f"Could not save the composite alarm as alarms [{', '.join(missing)}] in the alarm rule do not exist")
    return cloudwatch_responses.CloudWatchResponse.put_metric_alarm(self)


_delete_alarms = cloudwatch.CloudWatchBackend.delete_alarms


def delete_alarms(self, alarm_names):
    """CloudWatch DeleteAlarms: an alarm a composite alarm's rule names cannot go before it
    ("Cannot delete X as there are composite alarm(s) depending on it")."""
    for name in alarm_names:
        for other in self.alarms.values():
            if other.rule and other.name not in alarm_names and name in rule_names(other.rule):
                raise CloudWatchValidation(
                    f"Cannot delete {name} as there are composite alarm(s) depending on it: {other.name}")
    return _delete_alarms(self, alarm_names)


def describe_alarms(self):
    """CloudWatch DescribeAlarms lists composite alarms only when AlarmTypes names them, and
    metric alarms only when it names them or is absent (moto listed both always)."""
    types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
    result = _describe_alarms(self)
    body = result.result if hasattr(result, "result") else result
    if "MetricAlarm" not in types:
        body["MetricAlarms"] = []
    if "CompositeAlarm" not in types:
        body["CompositeAlarms"] = []
    return result


_describe_alarms = cloudwatch_responses.CloudWatchResponse.describe_alarms


_register_task_definition = ecs.EC2ContainerServiceBackend.register_task_definition


def register_task_definition(self, *args, **kwargs):
    """ECS RegisterTaskDefinition: a task definition over 64 KiB (its JSON) is a ClientException
    (moto took any size; an environment of stack.yaml travels in it)."""
    a = arguments(_register_task_definition, self, args, kwargs)
    fields = {k: v for k, v in a.items() if k != "self" and v is not None}
    size = len(json.dumps(fields, separators=(",", ":")).encode())
    limit = LIMITS["TASK_DEFINITION"]
    if size > limit:
        raise EcsClientException(f"Actual length: '{size}'. Max allowed length is '{limit}' bytes.")
    return _register_task_definition(self, *args, **kwargs)


_run_task = ecs.EC2ContainerServiceBackend.run_task


def run_task(self, *args, **kwargs):
    """ECS RunTask: `overrides` over 8,192 characters (its JSON) is refused (moto took any size;
    the load test's workers get their command there)."""
    overrides = arguments(_run_task, self, args, kwargs).get("overrides")
    limit = LIMITS["RUN_TASK_OVERRIDES"]
    if overrides and len(json.dumps(overrides, separators=(",", ":"))) > limit:
        raise ECSException("InvalidParameterException", f"Container Overrides length must be at most {limit}")
    return _run_task(self, *args, **kwargs)


_create_repository = ecr.ECRBackend.create_repository


def create_repository(self, repository_name, *args, **kwargs):
    """ECR CreateRepository: a name over 256 characters is refused (moto took it)."""
    if len(repository_name) > LIMITS["ECR_REPOSITORY_NAME"]:
        raise EcrInvalidParameter(
            f"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression "
            f"'(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*' and length between 2 and "
            f"{LIMITS['ECR_REPOSITORY_NAME']}'")
    return _create_repository(self, repository_name, *args, **kwargs)


class UserDataTooLong(EC2ClientError):
    code = "InvalidUserData.Malformed"
    __module__ = "moto.ec2.exceptions"


_create_version = launch_templates.LaunchTemplate.create_version


def create_version(self, data, description):
    """EC2 launch template versions: user data over 16 KB (before base64) is refused (moto took
    any size)."""
    encoded = str((data or {}).get("UserData") or "")
    try:
        size = len(base64.b64decode(encoded))
    except ValueError:
        size = len(encoded)
    if size > LIMITS["LAUNCH_TEMPLATE_USER_DATA"]:
        raise UserDataTooLong(f"User data is limited to {LIMITS['LAUNCH_TEMPLATE_USER_DATA']} bytes")
    return _create_version(self, data, description)


def _launch_template_tags(self):
    """DescribeLaunchTemplates reports a template's tags as they are now, as AWS does (moto kept
    the tags it was created with, whatever CreateTags and DeleteTags did since: `adopt` tags a
    template Terraform made, and the next `up` reads its tags from there)."""
    return self.get_tags()





# Auto Scaling instance refreshes: moto 5.2 has neither StartInstanceRefresh nor
# DescribeInstanceRefreshes (an HTTP 500). A group taken over from Terraform runs on `$Latest`,
# which `up` pins to a version by a refresh with a desired configuration. The model keeps each
# group's refreshes, newest first; a refresh ends Successful at once, with the group on its
# desired template (moto starts no instances, and an instance reports its template's default
# version), so none is ever in progress.
def _group(self):
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise AutoscalingClientError("ValidationError", f"AutoScalingGroup name not found - {name}")
    return group


def start_instance_refresh(self):
    group = _group(self)
    now = utcnow_plain()
    refresh = {
        "InstanceRefreshId": str(mock_random_plain.uuid4()),
        "AutoScalingGroupName": group.name,
        "Status": "Successful",
        "PercentageComplete": 100,
        "StartTime": now,
        "EndTime": now,
        "DesiredConfiguration": self._get_param("DesiredConfiguration", {}),
    }
    # A refresh that succeeds leaves the group on its desired launch template (AWS's
    # DesiredConfiguration: "the group is updated to the desired configuration" when it ends).
    template = refresh["DesiredConfiguration"].get("LaunchTemplate")
    if template:
        group._set_launch_configuration(None, template, None)
    group.instance_refreshes = [refresh] + getattr(group, "instance_refreshes", [])
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def describe_instance_refreshes(self):
    group = _group(self)
    return ActionResult({"InstanceRefreshes": getattr(group, "instance_refreshes", [])})


# Application Auto Scaling tags: moto 5.2 drops RegisterScalableTarget's Tags and has no
# TagResource, UntagResource or ListTagsForResource. AWS applies Tags only when the target is
# registered (not on a later RegisterScalableTarget), and tags it later with TagResource; the
# deploy role's scaling calls require the stack's tag on the target (aws:ResourceTag).
class ScalableTargetNotFound(JsonRESTError):
    def __init__(self, arn):
        super().__init__("ResourceNotFoundException", f"Scalable target {arn} not found")


_register_scalable_target_response = app_autoscaling_responses.ApplicationAutoScalingResponse.register_scalable_target


def register_scalable_target_response(self):
    backend = self.applicationautoscaling_backend
    dimension, resource = self._get_param("ScalableDimension"), self._get_param("ResourceId")
    known = resource in backend.targets.get(dimension, {})
    answer = _register_scalable_target_response(self)
    target = backend.targets[dimension][resource]
    if not known:
        target.tags = dict(self._get_param("Tags") or {})
    return answer


def _scalable_target(self, arn):
    for targets in self.applicationautoscaling_backend.targets.values():
        for target in targets.values():
            if target.arn == arn:
                return target
    raise ScalableTargetNotFound(arn)


def tag_scalable_target(self):
    target = _scalable_target(self, self._get_param("ResourceARN"))
    target.tags = {**getattr(target, "tags", {}), **(self._get_param("Tags") or {})}
    return "{}"


def untag_scalable_target(self):
    target = _scalable_target(self, self._get_param("ResourceARN"))
    gone = set(self._get_param("TagKeys") or [])
    target.tags = {k: v for k, v in getattr(target, "tags", {}).items() if k not in gone}
    return "{}"


def list_scalable_target_tags(self):
    target = _scalable_target(self, self._get_param("ResourceARN"))
    return json.dumps({"Tags": getattr(target, "tags", {})})

# ECS service deployments (issue 42): moto 5.2 keeps no deploymentConfiguration.strategy, no
# loadBalancers[].advancedConfiguration, and has none of the service-deployment APIs. The model
# below follows the ECS API reference (DeploymentConfiguration, CanaryConfiguration,
# LinearConfiguration, AdvancedConfiguration, DeploymentLifecycleHook, ServiceDeployment,
# List/DescribeServiceDeployments, Continue/StopServiceDeployment) and the developer guide's
# lifecycle stages ("Amazon ECS blue/green service deployments workflow").
#
# Time: stages that AWS holds for minutes (canary and linear bake times, the bake time, a PAUSE
# hook's timeout) are held on a test clock, not the wall clock. The clock of an account moves
# only when a test asks, on loopback:
#     POST /moto-api/ecs/clock   {"minutes": N}     header x-moto-account-id: ACCOUNT
# which moves every ECS region of that account N minutes on, lets each deployment go as far as
# that time allows (several stages if their waits have passed), and answers
# {"account": ACCOUNT, "minutes": total}.
# Stages AWS spends starting tasks or moving target groups take no test time: moto starts no
# tasks, so a deployment stops only where a wait, a bake or a PAUSE hook holds it.
# A service's first deployment (CreateService) walks the same stages as a later one (hooks run,
# Terraform's TestAccECSService_BlueGreenDeployment_createFailure sees its rollback fail with "No
# rollback candidate was found"); it shifts no traffic: its revision takes the service's
# targetGroupArn, which the listener rules already serve (unverified which group AWS uses first).
# A rollback passes ROLLBACK_REQUESTED and ROLLBACK_IN_PROGRESS, a test minute each. A new
# deployment (new task definition or forceNewDeployment) supersedes one in flight: that one ends
# STOPPED (supersede).
# Simplifications: a ROLLING deployment succeeds at once; AWS_LAMBDA hooks succeed at once (no
# Lambda is invoked); only an Application Load Balancer's listener rules are shifted (a Network
# Load Balancer's listener ARN is stored, not shifted).

from datetime import timedelta

from moto.core.utils import utcnow
from moto.ecs import responses as ecs_responses
from moto.moto_api._internal import mock_random
from moto.moto_api._internal import urls as moto_api_urls

STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
               "POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT",
               "POST_PRODUCTION_TRAFFIC_SHIFT")
# A hook may run at PRE_PRODUCTION_TRAFFIC_SHIFT, but ServiceDeployment.lifecycleStage has no such
# value (botocore's ServiceDeploymentLifecycleStage; the Rust SDK reads it as Unknown): the model
# reports PRODUCTION_TRAFFIC_SHIFT there, the phase that stage opens ("invoked before every traffic
# shift step"). Which stage AWS reports at that point is unverified.
REPORTED_STAGES = {"PRE_PRODUCTION_TRAFFIC_SHIFT": "PRODUCTION_TRAFFIC_SHIFT"}
LAMBDA_ONLY_STAGES = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
# How long a rollback stays ROLLBACK_REQUESTED and then ROLLBACK_IN_PROGRESS: AWS documents the
# statuses, not their durations; one test minute each lets a test see both.
ROLLBACK_STEP_MINUTES = 1
ROLLING_BACK = ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
IN_FLIGHT = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")


class EcsInvalidParameter(ECSException):
    def __init__(self, message):
        super().__init__("InvalidParameterException", message)


class ServiceDeploymentNotFound(ECSException):
    def __init__(self, message):
        super().__init__("ServiceDeploymentNotFoundException", message)


class EcsConflict(ECSException):
    def __init__(self, message):
        super().__init__("ConflictException", message)


for _error in (EcsInvalidParameter, ServiceDeploymentNotFound, EcsConflict):
    _error.__module__ = "moto.ecs.exceptions"


def _multiple_of_tenth(value):
    return abs(round(value * 10) - value * 10) < 1e-6


def _minutes_within(value, field):
    if value is not None and not 0 <= value <= 1440:
        raise EcsInvalidParameter(f"{field} must be between 0 and 1440 minutes.")


def validate_deployment(config, load_balancers, controller):
    """What the ECS API reference states for deploymentConfiguration and loadBalancers: canary
    percent 0.1-100 and linear step 3-100 (multiples of 0.1), bake times 0-1440 minutes, a bake
    time for BLUE_GREEN, canary/linear settings only with their strategy, the ECS deployment
    controller for any strategy but ROLLING, and an alternate target group and production
    listener rule (plus the role ECS uses to change them) on every load balancer of such a
    service. The messages are ours in ECS's form: AWS's exact words were not found."""
    config = config or {}
    strategy = config.get("strategy") or "ROLLING"
    if strategy not in STRATEGIES:
        raise EcsInvalidParameter(f"Invalid deployment strategy: {strategy}. Valid values are {', '.join(STRATEGIES)}.")
    canary, linear = config.get("canaryConfiguration"), config.get("linearConfiguration")
    if canary is not None and strategy != "CANARY":
        raise EcsInvalidParameter("canaryConfiguration is only valid when the deployment strategy is CANARY.")
    if linear is not None and strategy != "LINEAR":
        raise EcsInvalidParameter("linearConfiguration is only valid when the deployment strategy is LINEAR.")
    percent = (canary or {}).get("canaryPercent")
    if percent is not None and not (0.1 <= percent <= 100 and _multiple_of_tenth(percent)):
        raise EcsInvalidParameter("canaryPercent must be a multiple of 0.1 from 0.1 to 100.0.")
    step = (linear or {}).get("stepPercent")
    if step is not None and not (3 <= step <= 100 and _multiple_of_tenth(step)):
        raise EcsInvalidParameter("stepPercent must be a multiple of 0.1 from 3.0 to 100.0.")
    _minutes_within((canary or {}).get("canaryBakeTimeInMinutes"), "canaryBakeTimeInMinutes")
    _minutes_within((linear or {}).get("stepBakeTimeInMinutes"), "stepBakeTimeInMinutes")
    _minutes_within(config.get("bakeTimeInMinutes"), "bakeTimeInMinutes")
    if strategy == "BLUE_GREEN" and config.get("bakeTimeInMinutes") is None:
        raise EcsInvalidParameter("bakeTimeInMinutes must be provided when the deployment strategy is BLUE_GREEN.")
    for hook in config.get("lifecycleHooks") or []:
        target = hook.get("targetType") or "AWS_LAMBDA"
        stages = hook.get("lifecycleStages") or []
        if not stages:
            raise EcsInvalidParameter("A lifecycle hook must name at least one lifecycle stage.")
        for stage in stages:
            if stage not in HOOK_STAGES:
                raise EcsInvalidParameter(f"Invalid lifecycle stage: {stage}.")
        if target == "AWS_LAMBDA" and not hook.get("hookTargetArn"):
            raise EcsInvalidParameter("hookTargetArn must be provided for an AWS_LAMBDA lifecycle hook.")
        if target == "PAUSE" and hook.get("hookTargetArn"):
            raise EcsInvalidParameter("hookTargetArn is not applicable to a PAUSE lifecycle hook.")
        # DeploymentLifecycleHook.lifecycleStages: "PAUSE hooks cannot be configured at
        # TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages. These stages are only valid for
        # AWS_LAMBDA hooks."
        lambda_only = [stage for stage in stages if stage in LAMBDA_ONLY_STAGES]
        if target == "PAUSE" and lambda_only:
            raise EcsInvalidParameter(
                f"PAUSE lifecycle hooks cannot be configured at {lambda_only[0]}: it takes only AWS_LAMBDA hooks.")
        timeout = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes")
        if timeout is not None and not 1 <= timeout <= 20160:
            raise EcsInvalidParameter("timeoutInMinutes must be between 1 and 20160.")
    if strategy == "ROLLING":
        return
    if (controller or {}).get("type", "ECS") != "ECS":
        raise EcsInvalidParameter(f"The {strategy} deployment strategy requires the ECS deployment controller.")
    for lb in load_balancers or []:
        advanced = lb.get("advancedConfiguration")
        if not advanced:
            raise EcsInvalidParameter(
                f"advancedConfiguration must be provided for each load balancer when the deployment strategy is {strategy}.")
        for field in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
            if not advanced.get(field):
                raise EcsInvalidParameter(f"advancedConfiguration.{field} must be provided for a {strategy} deployment.")
        if advanced["alternateTargetGroupArn"] == lb.get("targetGroupArn"):
            raise EcsInvalidParameter("alternateTargetGroupArn must be different from targetGroupArn.")


def deployment_clock(backend):
    """The test clock of an ECS backend: the wall clock plus the minutes tests have moved it."""
    return utcnow() + timedelta(minutes=getattr(backend, "test_clock_minutes", 0))


def service_deployments(backend):
    if not hasattr(backend, "service_deployments_by_arn"):
        backend.service_deployments_by_arn = {}
    return backend.service_deployments_by_arn


def stage_plan(config):
    """The lifecycle stages of a deployment in order, as (stage, production weight of the new
    revision or None, test traffic to the new revision, minutes the stage holds)."""
    strategy = config.get("strategy") or "ROLLING"
    steps = [("PRE_SCALE_UP", None, False, 0), ("SCALE_UP", None, False, 0), ("POST_SCALE_UP", None, False, 0),
             ("TEST_TRAFFIC_SHIFT", None, True, 0), ("POST_TEST_TRAFFIC_SHIFT", None, True, 0)]
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        weights = [(float(canary.get("canaryPercent", 5.0)), int(canary.get("canaryBakeTimeInMinutes", 10))), (100.0, 0)]
    elif strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent", 10.0))
        wait = int(linear.get("stepBakeTimeInMinutes", 6))
        weights, shifted = [], 0.0
        while shifted < 100.0:
            shifted = min(100.0, round(shifted + step, 1))
            # "This bake time is not applied after reaching 100 percent traffic."
            weights.append((shifted, wait if shifted < 100.0 else 0))
    else:
        weights = [(100.0, 0)]
    for weight, wait in weights:
        steps.append(("PRE_PRODUCTION_TRAFFIC_SHIFT", None, True, 0))
        steps.append(("PRODUCTION_TRAFFIC_SHIFT", weight, True, wait))
    steps += [("POST_PRODUCTION_TRAFFIC_SHIFT", None, True, 0),
              ("BAKE_TIME", None, True, int(config.get("bakeTimeInMinutes") or 0)), ("CLEAN_UP", None, True, 0)]
    return steps


def find_listener_rule(account_id, region, arn):
    backend = elbv2.elbv2_backends[account_id][region]
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return rule
    return None


def forward(rule, weights):
    """Sets a listener rule's forward action to these target groups and weights (0-999 each,
    as ELBv2's ForwardConfig takes them), as ECS does through the role it was given."""
    if rule is None:
        return
    groups = [{"TargetGroupArn": arn, "Weight": int(round(w))} for arn, w in weights]
    old = next((a for a in rule.actions if a.type == "forward"), None)
    data = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups, "TargetGroupStickinessConfig": {"Enabled": False}}}
    if old is not None and "Order" in old.data:
        data["Order"] = old.data["Order"]
    rule.actions = [a for a in rule.actions if a.type != "forward"] + [elbv2.FakeAction(data)]


def shift_traffic(d, production, test_to_green):
    """Moves the listener rules of every load balancer of the deployment's service: production
    `production` percent to the new revision's target group, test traffic all to the new one or
    all to the old one."""
    for lb in d["_load_balancers"]:
        blue, green = lb["_blue"], lb["_green"]
        forward(find_listener_rule(d["_account"], d["_region"], lb["productionListenerRule"]),
                [(blue, 100.0 - production), (green, production)])
        if lb.get("testListenerRule"):
            forward(find_listener_rule(d["_account"], d["_region"], lb["testListenerRule"]),
                    [(blue, 0.0 if test_to_green else 100.0), (green, 100.0 if test_to_green else 0.0)])
    d["_production"], d["_test"] = production, test_to_green
    target, sources = d["targetServiceRevision"], d["sourceServiceRevisions"]
    target["requestedProductionTrafficWeight"] = production
    target["requestedTestTrafficWeight"] = 100.0 if test_to_green else 0.0
    for n, source in enumerate(sources):
        # The first source revision serves the live target group; another (a superseded
        # deployment's target) is being replaced and gets no traffic.
        source["requestedProductionTrafficWeight"] = 100.0 - production if n == 0 else 0.0
        source["requestedTestTrafficWeight"] = 0.0 if test_to_green or n else 100.0


def new_service_deployment(backend, service, config, sources, target_task_definition):
    """A service deployment record, its revisions and its stage plan (not yet started). `sources`:
    the ACTIVE service revisions it replaces, the one serving production first. With more than
    one (a deployment superseded mid-flight left its own), it starts with RECONCILE_SERVICE
    ("only happens when you start a new service deployment with more than 1 service revision in
    an ACTIVE state", API_ServiceDeployment.html), which puts all traffic back on the first."""
    now = deployment_clock(backend)
    ident = "".join(mock_random.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(21))
    prefix = f"arn:aws:ecs:{backend.region_name}:{backend.account_id}"
    revisions = getattr(backend, "service_revision_task_definitions", {})
    backend.service_revision_task_definitions = revisions
    target_arn = f"{prefix}:service-revision/{service.cluster_name}/{service.name}/{ident}"
    revisions[target_arn] = target_task_definition
    count = service.desired_count
    load_balancers = []
    for lb in (service.load_balancers or []) if sources else []:
        advanced = lb.get("advancedConfiguration") or {}
        if advanced.get("alternateTargetGroupArn"):
            live = service.__dict__.setdefault("live_target_groups", {})
            blue = live.get(lb["targetGroupArn"], lb["targetGroupArn"])
            green = advanced["alternateTargetGroupArn"] if blue == lb["targetGroupArn"] else lb["targetGroupArn"]
            load_balancers.append({**advanced, "_key": lb["targetGroupArn"], "_blue": blue, "_green": green})
    return {
        "serviceDeploymentArn": f"{prefix}:service-deployment/{service.cluster_name}/{service.name}/{ident}",
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "createdAt": now,
        "startedAt": now,
        "updatedAt": now,
        "sourceServiceRevisions": [
            {"arn": source, "requestedTaskCount": count, "runningTaskCount": count, "pendingTaskCount": 0}
            for source in sources
        ],
        "targetServiceRevision": {"arn": target_arn, "requestedTaskCount": count, "runningTaskCount": count,
                                  "pendingTaskCount": 0},
        "status": "PENDING",
        "deploymentConfiguration": config,
        "lifecycleHookDetails": [],
        "_service": service,
        "_account": backend.account_id,
        "_region": backend.region_name,
        "_load_balancers": load_balancers,
        "_plan": ([("RECONCILE_SERVICE", 0.0, False, 0)] if len(sources) > 1 else []) + stage_plan(config),
        "_index": -1,
        "_at": now,
    }


def finish(d, status, reason, at):
    d["status"], d["statusReason"] = status, reason
    d["finishedAt"] = d["updatedAt"] = at


def roll_back(backend, d, reason, at):
    """Asks for a rollback: ROLLBACK_REQUESTED, then ROLLBACK_IN_PROGRESS, then its end, each held
    ROLLBACK_STEP_MINUTES on the test clock (settle_rollback) so that a test sees every status
    API_ServiceDeployment.html lists."""
    source = d["sourceServiceRevisions"][0]["arn"] if d["sourceServiceRevisions"] else None
    d["rollback"] = {"reason": reason, "startedAt": at}
    if source:
        d["rollback"]["serviceRevisionArn"] = source
    d["_hook"] = None
    fail_hooks(d)
    d["status"], d["statusReason"], d["updatedAt"], d["_at"] = "ROLLBACK_REQUESTED", reason, at, at


def settle_rollback(backend, d, now):
    """Moves a rollback on: to ROLLBACK_IN_PROGRESS, which puts traffic back on the source
    revision, then to its end, the service back on the source revision's task definition (AWS
    ends a rollback of a blue/green family deployment with the old revision serving everything).
    A first deployment has no earlier revision: ROLLBACK_FAILED (Terraform's
    TestAccECSService_BlueGreenDeployment_createFailure: "No rollback candidate was found")."""
    step = timedelta(minutes=ROLLBACK_STEP_MINUTES)
    if d["status"] == "ROLLBACK_REQUESTED" and now >= d["_at"] + step:
        d["_at"] += step
        d["status"], d["updatedAt"] = "ROLLBACK_IN_PROGRESS", d["_at"]
        shift_traffic(d, 0.0, False)
    if d["status"] == "ROLLBACK_IN_PROGRESS" and now >= d["_at"] + step:
        d["_at"] += step
        source = d["rollback"].get("serviceRevisionArn")
        if not source:
            finish(d, "ROLLBACK_FAILED", "No rollback candidate was found.", d["_at"])
            return
        d["_service"].task_definition = backend.service_revision_task_definitions[source]
        d["_service"].current_service_revision = source
        d["targetServiceRevision"].update(runningTaskCount=0, requestedTaskCount=0)
        finish(d, "ROLLBACK_SUCCESSFUL", d["rollback"]["reason"], d["_at"])


def fail_hooks(d):
    for hook in d["lifecycleHookDetails"]:
        if hook["status"] == "AWAITING_ACTION":
            hook["status"] = "FAILED"


def pending_hook(d, stage):
    """The first PAUSE hook of this stage that is not yet answered (AWS_LAMBDA hooks: no Lambda
    here, so they succeed)."""
    config = d["deploymentConfiguration"]
    for n, hook in enumerate(config.get("lifecycleHooks") or []):
        if stage not in (hook.get("lifecycleStages") or []) or (hook.get("targetType") or "AWS_LAMBDA") != "PAUSE":
            continue
        key = (d["_index"], n)
        if key not in d.setdefault("_answered", set()):
            return n, hook, key
    return None


def settle(backend):
    """Moves every deployment of the backend on as far as its test clock allows."""
    now = deployment_clock(backend)
    for d in service_deployments(backend).values():
        while d["status"] in ("PENDING", "IN_PROGRESS"):
            if not step_deployment(backend, d, now):
                break
        if d["status"] in ROLLING_BACK:
            settle_rollback(backend, d, now)


def step_deployment(backend, d, now):
    """One move of a deployment: into its next stage, through a hook, or past a wait. False when
    it must wait for the clock or an answer."""
    plan = d["_plan"]
    if d["_index"] >= 0:
        stage, _, _, wait = plan[d["_index"]]
        waiting = pending_hook(d, stage)
        if waiting:
            n, hook, key = waiting
            detail = d.get("_hook")
            if detail is None:
                timeout = hook.get("timeoutConfiguration") or {}
                detail = {"hookId": f"{d['serviceDeploymentArn'].rsplit('/', 1)[1]}-{d['_index']}-{n}",
                          "targetType": "PAUSE", "status": "AWAITING_ACTION",
                          "expiresAt": d["_at"] + timedelta(minutes=int(timeout.get("timeoutInMinutes", 1440))),
                          "timeoutAction": timeout.get("action", "ROLLBACK")}
                d["_hook"], d["_hook_key"] = detail, key
                d["lifecycleHookDetails"] = [detail]
                return True
            if now < detail["expiresAt"]:
                return False
            detail["status"] = "TIMED_OUT"
            d["_answered"].add(key)
            d["_hook"] = None
            if detail["timeoutAction"] == "ROLLBACK":
                roll_back(backend, d, "The lifecycle hook timed out.", detail["expiresAt"])
                return False
            d["_at"] = detail["expiresAt"]
            return True
        if now < d["_at"] + timedelta(minutes=wait):
            return False
        d["_at"] = d["_at"] + timedelta(minutes=wait)
    d["_index"] += 1
    d["status"] = "IN_PROGRESS"
    d["updatedAt"] = d["_at"]
    if d["_index"] >= len(plan):
        complete(d)
        return False
    stage, production, test, _ = plan[d["_index"]]
    d["lifecycleStage"] = REPORTED_STAGES.get(stage, stage)
    if production is not None or test != d.get("_test", False):
        shift_traffic(d, production if production is not None else d.get("_production", 0.0), test)
    if stage == "CLEAN_UP":
        for source in d["sourceServiceRevisions"]:
            source.update(runningTaskCount=0, requestedTaskCount=0)
    return True


def complete(d):
    """The new revision serves everything and its target group is now the production one."""
    service = d["_service"]
    for lb in d["_load_balancers"]:
        service.__dict__.setdefault("live_target_groups", {})[lb["_key"]] = lb["_green"]
    service.current_service_revision = d["targetServiceRevision"]["arn"]
    finish(d, "SUCCESSFUL", "Service deployment completed.", d["_at"])


def public(d):
    return {k: v for k, v in d.items() if not k.startswith("_")}


def task_definition_arn(backend, name):
    return backend.describe_task_definition(name).arn if name else None


def start_deployment(backend, service, sources, task_definition):
    config = getattr(service, "deployment_configuration", None) or {}
    d = new_service_deployment(backend, service, config, sources, task_definition)
    service.current_service_revision = d["targetServiceRevision"]["arn"]
    service_deployments(backend)[d["serviceDeploymentArn"]] = d
    if (config.get("strategy") or "ROLLING") == "ROLLING":
        # moto places no tasks: a rolling deployment is done at once.
        d["status"] = "SUCCESSFUL"
        d["finishedAt"] = d["startedAt"]
        return d
    settle(backend)
    return d


_create_service_response = ecs_responses.EC2ContainerServiceResponse.create_service
_update_service_response = ecs_responses.EC2ContainerServiceResponse.update_service
_describe_services_response = ecs_responses.EC2ContainerServiceResponse.describe_services


def create_service_response(self):
    """ECS CreateService keeps deploymentConfiguration whole (strategy, bake time, canary/linear
    settings, lifecycle hooks) and loadBalancers[].advancedConfiguration, after ECS's checks
    (validate_deployment); the service's first service deployment is recorded. It also keeps
    what moto's CreateService drops but UpdateService keeps (moto sets every UpdateService
    parameter on the service): enableExecuteCommand (AWS answers it always, false by default),
    healthCheckGracePeriodSeconds and capacityProviderStrategy, so that DescribeServices answers
    the same right after a create as after an update that sent the same."""
    config = self._get_param("deploymentConfiguration")
    validate_deployment(config, self._get_param("loadBalancers"), self._get_param("deploymentController"))
    result = _create_service_response(self)
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
    if config is not None:
        service.deployment_configuration = config
    service.enable_execute_command = bool(self._get_param("enableExecuteCommand", False))
    for param, attribute in (("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
                             ("capacityProviderStrategy", "capacity_provider_strategy")):
        if self._get_param(param) is not None:
            setattr(service, attribute, self._get_param(param))
    start_deployment(self.ecs_backend, service, [], service.task_definition)
    return result


def update_service_response(self):
    """ECS UpdateService: the same checks and storage as CreateService; a new task definition or
    forceNewDeployment starts a service deployment, which a BLUE_GREEN, CANARY or LINEAR strategy
    takes through its lifecycle stages on the test clock. One still in flight is superseded
    (supersede)."""
    backend = self.ecs_backend
    service = backend._get_service(self._get_param("cluster", "default"), self._get_param("service").split("/")[-1])
    config = self._get_param("deploymentConfiguration")
    load_balancers = self._get_param("loadBalancers")
    validate_deployment(config if config is not None else getattr(service, "deployment_configuration", None),
                        load_balancers if load_balancers is not None else service.load_balancers,
                        service.deployment_controller)
    settle(backend)
    before = task_definition_arn(backend, service.task_definition)
    source = getattr(service, "current_service_revision", None)
    result = _update_service_response(self)
    after = task_definition_arn(backend, service.task_definition)
    service.task_definition = after
    if after != before or self._get_param("forceNewDeployment"):
        sources = supersede(backend, service) or ([source] if source else [])
        start_deployment(backend, service, sources, after)
    return result


def supersede(backend, service):
    """Ends the service's deployments still in flight STOPPED, as a new deployment replaces them
    (service-deployment.html: UpdateService with a new revision or forceNewDeployment creates a
    service deployment; STOPPED is a completed state); the revisions they leave ACTIVE (their
    sources, then their target), for the new deployment to replace. The statusReason is ours:
    AWS's words were not found."""
    sources = []
    for d in service_deployments(backend).values():
        if d["_service"] is not service or d["status"] not in IN_FLIGHT:
            continue
        d["_hook"] = None
        fail_hooks(d)
        finish(d, "STOPPED", "Superseded by a new service deployment.", deployment_clock(backend))
        for arn in [r["arn"] for r in d["sourceServiceRevisions"]] + [d["targetServiceRevision"]["arn"]]:
            if arn not in sources:
                sources.append(arn)
    return sources


def describe_services_response(self):
    settle(self.ecs_backend)
    return _describe_services_response(self)


def deployment_of(backend, arn):
    settle(backend)
    d = service_deployments(backend).get(arn)
    if d is None:
        raise ServiceDeploymentNotFound(f"The service deployment {arn} does not exist.")
    return d


def epoch(value):
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def list_service_deployments(self):
    """ECS ListServiceDeployments: a service's deployments, newest first, filtered by status and
    createdAt, paged by maxResults (1-100, default 20) and nextToken."""
    backend = self.ecs_backend
    service = backend._get_service(self._get_param("cluster", "default"), self._get_param("service").split("/")[-1])
    settle(backend)
    statuses = self._get_param("status") or []
    created = self._get_param("createdAt") or {}
    found = [d for d in service_deployments(backend).values() if d["_service"] is service
             and (not statuses or d["status"] in statuses)]
    found.sort(key=lambda d: d["createdAt"], reverse=True)
    if created.get("before") is not None:
        found = [d for d in found if d["createdAt"].timestamp() < epoch(created["before"])]
    if created.get("after") is not None:
        found = [d for d in found if d["createdAt"].timestamp() > epoch(created["after"])]
    size = self._get_int_param("maxResults") or 20
    if not 1 <= size <= 100:
        raise EcsInvalidParameter("maxResults must be between 1 and 100.")
    start = int(self._get_param("nextToken") or 0)
    page = found[start:start + size]
    briefs = [{"serviceDeploymentArn": d["serviceDeploymentArn"], "serviceArn": d["serviceArn"],
               "clusterArn": d["clusterArn"], "startedAt": d["startedAt"], "createdAt": d["createdAt"],
               "finishedAt": d.get("finishedAt"), "targetServiceRevisionArn": d["targetServiceRevision"]["arn"],
               "status": d["status"], "statusReason": d.get("statusReason")} for d in page]
    token = str(start + size) if start + size < len(found) else None
    return ecs_responses.ActionResult({"serviceDeployments": briefs, "nextToken": token})


def describe_service_deployments(self):
    """ECS DescribeServiceDeployments: up to 20 ARNs; an unknown one is a failure (MISSING)."""
    arns = self._get_param("serviceDeploymentArns") or []
    if len(arns) > 20:
        raise EcsInvalidParameter("serviceDeploymentArns can have at most 20 items.")
    backend = self.ecs_backend
    settle(backend)
    found, failures = [], []
    for arn in arns:
        d = service_deployments(backend).get(arn)
        if d is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(public(d))
    return ecs_responses.ActionResult({"serviceDeployments": found, "failures": failures})


def continue_service_deployment(self):
    """ECS ContinueServiceDeployment: answers the PAUSE hook `hookId` of a paused deployment;
    CONTINUE (the default) moves it to its next stage, ROLLBACK rolls it back."""
    backend = self.ecs_backend
    d = deployment_of(backend, self._get_param("serviceDeploymentArn"))
    hook = d.get("_hook")
    if d["status"] not in ("PENDING", "IN_PROGRESS") or hook is None or hook["hookId"] != self._get_param("hookId"):
        raise EcsInvalidParameter(f"The service deployment is not paused at lifecycle hook {self._get_param('hookId')}.")
    now = deployment_clock(backend)
    d["_answered"].add(d["_hook_key"])
    d["_hook"] = None
    d["_at"] = now
    if (self._get_param("action") or "CONTINUE") == "ROLLBACK":
        hook["status"] = "FAILED"
        roll_back(backend, d, "Rolled back by ContinueServiceDeployment.", now)
    else:
        hook["status"] = "SUCCEEDED"
        settle(backend)
    return ecs_responses.ActionResult({"serviceDeploymentArn": d["serviceDeploymentArn"]})


def stop_service_deployment(self):
    """ECS StopServiceDeployment with ROLLBACK (developer guide, "Stopping Amazon ECS service
    deployments"): a PENDING or IN_PROGRESS deployment moves to ROLLBACK_REQUESTED and rolls back
    (roll_back); one already STOP_REQUESTED or rolling back goes on as it was. The API reference
    says "The valid values are ROLLBACK": ABORT, in the model's enum but not described, is
    refused."""
    backend = self.ecs_backend
    d = deployment_of(backend, self._get_param("serviceDeploymentArn"))
    stop_type = self._get_param("stopType") or "ROLLBACK"
    if stop_type != "ROLLBACK":
        raise EcsInvalidParameter(f"Invalid stopType: {stop_type}. The valid values are ROLLBACK.")
    if d["status"] in ROLLING_BACK + ("STOP_REQUESTED",):
        # "ROLLBACK_REQUESTED - The service deployment continues the rollback operation."
        return ecs_responses.ActionResult({"serviceDeploymentArn": d["serviceDeploymentArn"]})
    if d["status"] not in ("PENDING", "IN_PROGRESS"):
        raise EcsConflict(f"The service deployment is {d['status']} and cannot be stopped.")
    roll_back(backend, d, "Stopped by StopServiceDeployment.", deployment_clock(backend))
    return ecs_responses.ActionResult({"serviceDeploymentArn": d["serviceDeploymentArn"]})


def advance_deployment_clock(request, full_url, headers):
    """POST /moto-api/ecs/clock {"minutes": N}: the test clock (above). Loopback only."""
    from moto.core import DEFAULT_ACCOUNT_ID
    if (request.remote_addr or "") not in ("127.0.0.1", "::1"):
        return 403, {}, json.dumps({"error": "the test clock answers on loopback only"})
    if request.method != "POST":
        return 405, {}, json.dumps({"error": "POST {\"minutes\": N}"})
    minutes = float(json.loads(request.data or b"{}").get("minutes", 0))
    if minutes < 0:
        return 400, {}, json.dumps({"error": "the clock only moves forward"})
    # `headers` is a plain dict with the client's spelling: ask the request, case-insensitively.
    account = request.headers.get("x-moto-account-id") or DEFAULT_ACCOUNT_ID
    total = 0
    for backend in list(ecs.ecs_backends[account].values()):
        backend.test_clock_minutes = getattr(backend, "test_clock_minutes", 0) + minutes
        total = backend.test_clock_minutes
        settle(backend)
    return 200, {"Content-Type": "application/json"}, json.dumps({"account": account, "minutes": total})


ecs_responses.EC2ContainerServiceResponse.create_service = create_service_response
ecs_responses.EC2ContainerServiceResponse.update_service = update_service_response
ecs_responses.EC2ContainerServiceResponse.describe_services = describe_services_response
ecs_responses.EC2ContainerServiceResponse.list_service_deployments = list_service_deployments
ecs_responses.EC2ContainerServiceResponse.describe_service_deployments = describe_service_deployments
ecs_responses.EC2ContainerServiceResponse.continue_service_deployment = continue_service_deployment
ecs_responses.EC2ContainerServiceResponse.stop_service_deployment = stop_service_deployment
moto_api_urls.url_paths["{0}/moto-api/ecs/clock"] = advance_deployment_clock


access_control.IAMRequestBase.__init__ = iam_request_init
ecr.ECRBackend.create_repository = create_repository
launch_templates.LaunchTemplate.create_version = create_version
launch_templates.LaunchTemplate.tags = property(_launch_template_tags, lambda self, value: None)
autoscaling_responses.AutoScalingResponse.start_instance_refresh = start_instance_refresh
autoscaling_responses.AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
app_autoscaling_responses.ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target_response
app_autoscaling_responses.ApplicationAutoScalingResponse.tag_resource = tag_scalable_target
app_autoscaling_responses.ApplicationAutoScalingResponse.untag_resource = untag_scalable_target
app_autoscaling_responses.ApplicationAutoScalingResponse.list_tags_for_resource = list_scalable_target_tags
ssm.SimpleSystemManagerBackend.put_parameter = put_parameter
secretsmanager.SecretsManagerBackend.create_secret = create_secret
secretsmanager.SecretsManagerBackend.put_secret_value = put_secret_value
cloudwatch.CloudWatchBackend.put_metric_alarm = put_metric_alarm
cloudwatch.Statistics.get_statistics_for_type = get_statistics_for_type
# PutCompositeAlarm, which moto does not serve: its PutMetricAlarm reads AlarmRule for this.
cloudwatch_responses.CloudWatchResponse.put_composite_alarm = put_composite_alarm
cloudwatch.CloudWatchBackend.delete_alarms = delete_alarms
cloudwatch_responses.CloudWatchResponse.describe_alarms = describe_alarms
# A composite alarm's rule, under the name AWS's answer gives it.
cloudwatch.Alarm.alarm_rule = property(lambda self: self.rule)
ecs.EC2ContainerServiceBackend.register_task_definition = register_task_definition
ecs.EC2ContainerServiceBackend.run_task = run_task
iam.IAMBackend.put_role_policy = put_role_policy
iam.IAMBackend.create_policy = create_policy
iam.IAMBackend.create_policy_version = create_policy_version
iam.IAMBackend.attach_role_policy = attach_role_policy
iam.IAMBackend.create_role = create_role
iam.IAMBackend.update_assume_role_policy = update_assume_role_policy
iam.IAMBackend.create_instance_profile = create_instance_profile
iam.IAMBackend.remove_role_from_instance_profile = remove_role_from_instance_profile
app_autoscaling.ApplicationAutoscalingBackend.delete_scaling_policy = not_found_as_aws_says(
    app_autoscaling.ApplicationAutoscalingBackend.delete_scaling_policy)
app_autoscaling.ApplicationAutoscalingBackend.deregister_scalable_target = not_found_as_aws_says(
    app_autoscaling.ApplicationAutoscalingBackend.deregister_scalable_target)
ecs.EC2ContainerServiceBackend.list_tasks = list_tasks
ecs.EC2ContainerServiceBackend.list_services = list_services
ecs.EC2ContainerServiceBackend.delete_cluster = delete_cluster
autoscaling.AutoScalingBackend.create_auto_scaling_group = create_auto_scaling_group
elbv2.ELBv2Backend.create_load_balancer = create_load_balancer
ecs.EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider
route53.Route53Backend.change_resource_record_sets = change_resource_record_sets

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
