"""parliament (an AWS policy linter), with its reading of AWS's condition key types completed: its
Service Authorization Reference copy types some keys `ArrayOfARN` (ecs:capacity-provider,
autoscaling:TargetGroupARNs), which its type table lacks, so it crashes on any policy that names
one. Such a key is read as the ARN it lists. Run by the policy tests
(provisioner/tests/integration/attacker.rs) with the tools venv's Python; arguments are
parliament's.
"""

import sys

from parliament import statement

_translate = statement.translate_documentation_types


def translate_documentation_types(kind):
    """`ArrayOfARN` as `Arn` (each value of the array is one), the rest as parliament reads them."""
    if kind == "ArrayOfARN":
        return "Arn"
    return _translate(kind)


statement.translate_documentation_types = translate_documentation_types

if __name__ == "__main__":
    from parliament.cli import cli

    sys.exit(cli())
