//! Facts about AWS that validation checks against: region codes, and the EC2 instance types we
//! know (vCPUs, memory, CPU architecture) so cpu/memory fit and image architecture can be checked.

/// AWS commercial region codes.
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
];

/// CPU architecture of an instance type (and of an image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[serde(rename = "amd64")]
    X86_64,
    Arm64,
}

impl Arch {
    /// The name OCI image configs use (`amd64`, `arm64`).
    pub fn oci_name(self) -> &'static str {
        match self {
            Self::X86_64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        })
    }
}

/// What an instance type offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceType {
    pub vcpus: u32,
    pub memory_mib: u32,
    pub arch: Arch,
}

/// The architecture implied by an instance type's family: Graviton families carry a `g` after the
/// generation digit (t4g, m7g, c6gn, r8g) and `a1` is Graviton too.
pub fn arch_of(instance_type: &str) -> Arch {
    let family = instance_type.split('.').next().unwrap_or_default();
    let after_generation = family.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = after_generation.trim_start_matches(|c: char| c.is_ascii_digit());
    if family == "a1" || suffix.starts_with('g') { Arch::Arm64 } else { Arch::X86_64 }
}

/// vCPUs and memory of the sizes shared by the common general-purpose and compute families.
pub fn lookup(instance_type: &str) -> Option<InstanceType> {
    let (family, size) = instance_type.split_once('.')?;
    let arch = arch_of(instance_type);
    let burstable = family.starts_with('t');
    let compute = family.starts_with('c');
    let general = family.starts_with('m');
    if !(burstable || compute || general) {
        return None;
    }
    let (vcpus, memory_mib) = match (size, burstable) {
        ("nano", true) => (2, 512),
        ("micro", true) => (2, 1024),
        ("small", true) => (2, 2048),
        ("medium", true) => (2, 4096),
        ("large", true) => (2, 8192),
        ("xlarge", true) => (4, 16384),
        ("2xlarge", true) => (8, 32768),
        ("medium", false) if general => (1, 4096),
        ("large", false) => (2, if compute { 4096 } else { 8192 }),
        ("xlarge", false) => (4, if compute { 8192 } else { 16384 }),
        ("2xlarge", false) => (8, if compute { 16384 } else { 32768 }),
        ("4xlarge", false) => (16, if compute { 32768 } else { 65536 }),
        _ => return None,
    };
    Some(InstanceType { vcpus, memory_mib, arch })
}

/// CloudWatch Logs' allowed retention periods, in days.
pub const LOG_RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_by_family() {
        for (t, arch) in [
            ("t3.small", Arch::X86_64),
            ("t3a.medium", Arch::X86_64),
            ("t4g.small", Arch::Arm64),
            ("m7g.large", Arch::Arm64),
            ("c6gn.xlarge", Arch::Arm64),
            ("m5.large", Arch::X86_64),
            ("a1.large", Arch::Arm64),
            ("c7i.large", Arch::X86_64),
        ] {
            assert_eq!(arch_of(t), arch, "{t}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(lookup("t3.small"), Some(InstanceType { vcpus: 2, memory_mib: 2048, arch: Arch::X86_64 }));
        assert_eq!(lookup("c6g.large").map(|i| i.memory_mib), Some(4096));
        assert_eq!(lookup("x2iedn.large"), None);
    }
}
