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
from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.autoscaling import models as autoscaling
from moto.autoscaling.exceptions import AutoscalingClientError
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


access_control.IAMRequestBase.__init__ = iam_request_init
ecr.ECRBackend.create_repository = create_repository
launch_templates.LaunchTemplate.create_version = create_version
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
ecs.EC2ContainerServiceBackend.delete_cluster = delete_cluster
autoscaling.AutoScalingBackend.create_auto_scaling_group = create_auto_scaling_group
elbv2.ELBv2Backend.create_load_balancer = create_load_balancer
ecs.EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider
route53.Route53Backend.change_resource_record_sets = change_resource_record_sets

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
