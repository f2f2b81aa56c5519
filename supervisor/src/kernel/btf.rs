//! Just enough of a BTF reader to find struct member offsets in the running kernel.
//!
//! Rust eBPF has no CO-RE relocations, so the programs read kernel structs at offsets that we
//! look up here in /sys/kernel/btf/vmlinux and hand over as load-time constants. Format:
//! <https://docs.kernel.org/bpf/btf.html>.
use std::path::Path;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not BTF data: {0}")]
    Malformed(&'static str),
    #[error("BTF type kind {0} is unknown to Warden")]
    UnknownKind(u32),
    #[error("struct {0} not found in kernel BTF")]
    NoStruct(String),
    #[error("struct {strukt} has no member {member} in kernel BTF")]
    NoMember { strukt: String, member: String },
}

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    /// Bit offset within the enclosing struct.
    bit_offset: u32,
}

struct Type {
    name_off: u32,
    kind: u32,
    /// Referenced type for modifiers and typedefs.
    type_ref: u32,
    /// Where its members start in `Btf::members`, and how many there are.
    first_member: u32,
    members: u32,
}

pub struct Btf {
    types: Vec<Type>, // index = type id; 0 is void
    /// The members of every struct and union, one after the other (one allocation, not one per
    /// type: the kernel has a hundred thousand types).
    members: Vec<Member>,
    strings: Vec<u8>,
}

/// The bytes of a BTF file. Reading the kernel's takes milliseconds (sysfs hands it out a page
/// per read): read it once for every parse of it.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, BtfError> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|source| BtfError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Btf {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        Self::parse(&read(path)?)
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if u16_at(0) != Some(MAGIC) {
            return Err(BtfError::Malformed(
                "bad magic (only little-endian BTF is read)",
            ));
        }
        let hdr = |i: usize| u32_at(4 + 4 * i).ok_or(BtfError::Malformed("short header"));
        let hdr_len = hdr(0)? as usize;
        let (type_off, type_len, str_off, str_len) = (
            hdr(1)? as usize,
            hdr(2)? as usize,
            hdr(3)? as usize,
            hdr(4)? as usize,
        );
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section out of bounds"))?
            .to_vec();
        if types_end > data.len() {
            return Err(BtfError::Malformed("type section out of bounds"));
        }

        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            type_ref: 0,
            first_member: 0,
            members: 0,
        }];
        let mut all_members = Vec::new();
        let mut pos = types_start;
        let word = |o: usize| u32_at(o).ok_or(BtfError::Malformed("truncated type"));
        while pos < types_end {
            let name_off = word(pos)?;
            let info = word(pos + 4)?;
            let size_or_type = word(pos + 8)?;
            pos += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let first_member = all_members.len() as u32;
            match kind {
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = pos + 12 * i;
                        let raw = word(m + 8)?;
                        all_members.push(Member {
                            name_off: word(m)?,
                            type_id: word(m + 4)?,
                            // With kind_flag the top 8 bits hold a bitfield size.
                            bit_offset: if kind_flag { raw & 0x00ff_ffff } else { raw },
                        });
                    }
                    pos += 12 * vlen;
                }
                KIND_INT | KIND_VAR | KIND_DECL_TAG => pos += 4,
                KIND_ARRAY => pos += 12,
                KIND_ENUM | KIND_FUNC_PROTO => pos += 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => pos += 12 * vlen,
                2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
                | KIND_TYPE_TAG => {}
                other => return Err(BtfError::UnknownKind(other)),
            }
            types.push(Type {
                name_off,
                kind,
                type_ref: size_or_type,
                first_member,
                members: all_members.len() as u32 - first_member,
            });
        }
        Ok(Self {
            types,
            members: all_members,
            strings,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.type_ref
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// Byte offset of `member` in `struct strukt`, looking inside anonymous structs and unions
    /// (where, for example, `mm_struct::arg_start` lives).
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u64, BtfError> {
        let t = self
            .types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == strukt.as_bytes())
            .ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        self.find_member(t, member.as_bytes(), 0)
            .map(|bits| bits / 8)
            .ok_or_else(|| BtfError::NoMember {
                strukt: strukt.to_string(),
                member: member.to_string(),
            })
    }

    fn members_of(&self, t: &Type) -> &[Member] {
        let start = t.first_member as usize;
        self.members
            .get(start..start + t.members as usize)
            .unwrap_or_default()
    }

    fn find_member(&self, t: &Type, member: &[u8], depth: u32) -> Option<u64> {
        if depth > 8 {
            return None;
        }
        let members = self.members_of(t);
        for m in members {
            if self.name(m.name_off) == member {
                return Some(m.bit_offset as u64);
            }
        }
        for m in members.iter().filter(|m| m.name_off == 0) {
            let inner = self.resolve(m.type_id)?;
            if matches!(inner.kind, KIND_STRUCT | KIND_UNION)
                && let Some(bits) = self.find_member(inner, member, depth + 1)
            {
                return Some(m.bit_offset as u64 + bits);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny BTF blob: `struct outer { int a; struct { int b; long c; }; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0outer\0a\0b\0c\0long\0".to_vec();
        let s = |name: &str| {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend(w.to_le_bytes()));
        push(&[s("int"), KIND_INT << 24, 4, 32]); // 1: int
        push(&[s("long"), KIND_INT << 24, 8, 64]); // 2: long
        push(&[0, (KIND_STRUCT << 24) | 2, 16, s("b"), 1, 0, s("c"), 2, 64]); // 3: anon
        push(&[
            s("outer"),
            (KIND_STRUCT << 24) | 2,
            24,
            s("a"),
            1,
            0,
            0,
            3,
            64,
        ]); // 4: outer
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend(w.to_le_bytes());
        }
        out.extend(&types);
        out.extend(&strings);
        out
    }

    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "b").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "c").unwrap(), 16);
        assert!(matches!(
            btf.member_offset("outer", "zz"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", "a"),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
        let mut truncated = sample();
        truncated.truncate(40);
        assert!(Btf::parse(&truncated).is_err());
    }

    #[test]
    fn reads_the_running_kernel() {
        // Every machine this project runs on has BTF (see platform.md); a missing file is a
        // real failure, not a skip.
        let btf = Btf::from_file(VMLINUX).unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        assert_eq!(tgid, pid + 4, "pid and tgid are adjacent in task_struct");
        let start = btf.member_offset("mm_struct", "arg_start").unwrap();
        let end = btf.member_offset("mm_struct", "arg_end").unwrap();
        assert_eq!(end, start + 8);
    }
}
