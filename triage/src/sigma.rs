//! A platform team's own detections in Sigma format (`warden triage --rules DIR`), run over a
//! session's records mapped to the Sysmon-style fields that Sigma's Linux rules read.
use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fmt, fs,
    path::{Path, PathBuf},
    rc::Rc,
};

use rsigma_eval::{CompiledRule, Engine, EventValue, compile_rule, evaluate_rule};
use rsigma_parser::{Level, LogSource, SigmaCollection, parse_sigma_yaml};
use warden_records::events::{
    Event, Record, Verdict,
    escape::{for_terminal, unescape},
};

use crate::{
    detections::{read_path, written_paths},
    finding::{Finding, FindingSource, Severity, calls, ranges},
};

/// Why a set of rules was not loaded. Nothing of a set is applied unless all of it loads.
#[derive(Debug, thiserror::Error)]
pub enum SigmaError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no Sigma rules (*.yml, *.yaml) in it", .0.display())]
    NoRules(PathBuf),
    #[error("{}", invalid(.0))]
    Invalid(Vec<RuleError>),
}

fn invalid(errors: &[RuleError]) -> String {
    let mut s = format!(
        "the Sigma rules do not load ({} error{}), so none is applied:",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    // The parser's messages can span lines (a condition with a caret under the place).
    for e in errors {
        s.push_str(&format!("\n  {}", e.to_string().replace('\n', "\n    ")));
    }
    s
}

/// A rule file that does not parse or compile, in the Sigma crate's words (which give the line
/// and column of YAML errors, the key of an unknown modifier, the place in a condition).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct RuleError {
    pub path: PathBuf,
    pub message: String,
}

/// A rule loaded but not evaluated: Warden has no records for its logsource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// The rule's title.
    pub rule: String,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            for_terminal(&self.rule),
            for_terminal(&self.reason)
        )
    }
}

/// The Sigma log categories that Warden's records map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    ProcessCreation,
    FileEvent,
    FileDelete,
    FileAccess,
    NetworkConnection,
    DnsQuery,
}

impl Category {
    fn from_name(name: &str) -> Option<Category> {
        Some(match name {
            "process_creation" => Category::ProcessCreation,
            "file_event" => Category::FileEvent,
            "file_delete" => Category::FileDelete,
            "file_access" => Category::FileAccess,
            "network_connection" => Category::NetworkConnection,
            "dns_query" => Category::DnsQuery,
            _ => return None,
        })
    }
}

/// The category a rule reads, or why Warden has no records for it.
fn category(ls: &LogSource) -> Result<Category, String> {
    if let Some(p) = ls.product.as_deref()
        && !p.eq_ignore_ascii_case("linux")
    {
        return Err(format!("product {p}: Warden records Linux sessions"));
    }
    if let Some(s) = &ls.service {
        return Err(format!(
            "service {s}: Warden keeps no such log (it maps its own records to categories)"
        ));
    }
    match ls.category.as_deref() {
        None => Err("no category: Warden maps its records to categories only".into()),
        Some(c) => Category::from_name(c)
            .ok_or_else(|| format!("category {c}: no Warden record maps to it")),
    }
}

/// User rules in Sigma format, loaded and compiled.
pub struct SigmaRules {
    /// Holds the compiled rules with the set's Sigma filters applied to them.
    engine: Engine,
    /// The category of each of the engine's rules, in its order.
    categories: Vec<Category>,
    skipped: Vec<Skipped>,
}

impl SigmaRules {
    /// Every `*.yml` and `*.yaml` under `dir`. A file that does not parse or compile refuses the
    /// whole set; rules of logsources Warden has no records for are loaded as [`Skipped`].
    pub fn load(dir: impl AsRef<Path>) -> Result<SigmaRules, SigmaError> {
        let dir = dir.as_ref();
        let files = rule_files(dir)?;
        if files.is_empty() {
            return Err(SigmaError::NoRules(dir.to_path_buf()));
        }
        let mut rules = SigmaRules {
            engine: Engine::new(),
            categories: Vec::new(),
            skipped: Vec::new(),
        };
        let mut errors = Vec::new();
        let mut filters = Vec::new();
        for path in files {
            let text = fs::read_to_string(&path).map_err(|source| SigmaError::Read {
                path: path.clone(),
                source,
            })?;
            let error = |message: String| RuleError {
                path: path.clone(),
                message,
            };
            let collection = match parse_sigma_yaml(&text) {
                Ok(c) if c.errors.is_empty() => c,
                Ok(c) => {
                    errors.extend(c.errors.into_iter().map(error));
                    continue;
                }
                Err(e) => {
                    errors.push(error(e.to_string()));
                    continue;
                }
            };
            errors.extend(rules.add(&path, &collection).into_iter().map(error));
            filters.extend(collection.filters.into_iter().map(|f| (path.clone(), f)));
        }
        // After every rule: a filter names rules of any file.
        for (path, filter) in &filters {
            if let Err(e) = rules.engine.apply_filter(filter) {
                errors.push(RuleError {
                    path: path.clone(),
                    message: format!("{e} (filter {})", filter.title),
                });
            }
        }
        if !errors.is_empty() {
            return Err(SigmaError::Invalid(errors));
        }
        Ok(rules)
    }

    /// Adds one file's rules; returns what does not compile.
    fn add(&mut self, path: &Path, collection: &SigmaCollection) -> Vec<String> {
        let mut errors = Vec::new();
        for rule in &collection.rules {
            let skip = |reason| Skipped {
                path: path.to_path_buf(),
                rule: rule.title.clone(),
                reason,
            };
            match category(&rule.logsource) {
                Ok(c) => match self.engine.add_rule(rule) {
                    Ok(()) => self.categories.push(c),
                    Err(e) => errors.push(format!("{e} (rule {})", rule.title)),
                },
                // A rule Warden cannot use must still be a rule: the set is refused whole.
                Err(reason) => match compile_rule(rule) {
                    Ok(_) => self.skipped.push(skip(reason)),
                    Err(e) => errors.push(format!("{e} (rule {})", rule.title)),
                },
            }
        }
        for c in &collection.correlations {
            self.skipped.push(Skipped {
                path: path.to_path_buf(),
                rule: c.title.clone(),
                reason: "correlation rule: triage matches single records".into(),
            });
        }
        errors
    }

    /// How many rules are evaluated (not skipped).
    pub fn rule_count(&self) -> usize {
        self.categories.len()
    }

    /// The rules loaded but not evaluated, with the reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// A finding for each rule that matched any of the records (in `seq` order, as the log
    /// holds them).
    pub fn evaluate(&self, records: &[Record]) -> Vec<Finding> {
        let rules = self.engine.rules();
        let mut hits: Vec<Vec<&Record>> = vec![Vec::new(); rules.len()];
        let mut session = Session::default();
        for rec in records {
            for (category, fields) in session.events(rec) {
                for (i, rule) in rules.iter().enumerate() {
                    // A rename is two file events; the record counts once.
                    if self.categories[i] == category
                        && hits[i].last().is_none_or(|r| r.seq != rec.seq)
                        && evaluate_rule(rule, &fields).is_some()
                    {
                        hits[i].push(rec);
                    }
                }
            }
            session.update(rec);
        }
        rules
            .iter()
            .zip(&hits)
            .filter(|(_, hits)| !hits.is_empty())
            .map(|(rule, hits)| finding(rule, hits))
            .collect()
    }
}

/// The rule files under `dir`, in path order (findings of one severity keep it). Hidden entries
/// are left out: a rules repository's `.github/` holds YAML that is not Sigma.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, SigmaError> {
    let read = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SigmaError::Read { path, source }
    };
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    // Directories by their real path: a symlink loop would never end.
    let mut seen = HashSet::new();
    while let Some(d) = dirs.pop() {
        if !seen.insert(fs::canonicalize(&d).map_err(read(&d))?) {
            continue;
        }
        for entry in fs::read_dir(&d).map_err(read(&d))? {
            let path = entry.map_err(read(&d))?.path();
            if path
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
            {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn finding(rule: &CompiledRule, hits: &[&Record]) -> Finding {
    let count: u64 = hits.iter().map(|r| calls(&r.event)).sum();
    let seqs: Vec<u64> = hits.iter().map(|r| r.seq).collect();
    Finding {
        detection: for_terminal(rule.id.as_deref().unwrap_or(&rule.title)),
        source: FindingSource::Sigma,
        severity: severity(rule.level),
        techniques: techniques(&rule.tags),
        narrative: format!(
            "{} ({} time{}, first at seq {}: {})",
            for_terminal(&rule.title),
            count,
            if count == 1 { "" } else { "s" },
            hits[0].seq,
            crate::render::what(hits[0])
        ),
        count,
        evidence: ranges(&seqs),
        review: None,
    }
}

/// A rule without a level is one someone wrote to be told about: medium.
fn severity(level: Option<Level>) -> Severity {
    match level {
        Some(Level::Informational | Level::Low) => Severity::Low,
        Some(Level::Medium) | None => Severity::Medium,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

/// ATT&CK technique ids from `attack.t1059.004` tags; tactics (`attack.execution`), groups and
/// software are not techniques.
fn techniques(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let Some(id) = tag
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("attack."))
            .map(|_| tag[7..].to_ascii_uppercase())
        else {
            continue;
        };
        if is_technique(&id) && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `T` and four digits, with an optional `.` and three.
fn is_technique(id: &str) -> bool {
    let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = id.strip_prefix('T') else {
        return false;
    };
    match rest.split_once('.') {
        Some((main, sub)) => digits(main, 4) && digits(sub, 3),
        None => digits(rest, 4),
    }
}

/// One record as Sigma sees it: named fields of one category.
struct Fields<'a>(Vec<(&'static str, EventValue<'a>)>);

impl<'a> Fields<'a> {
    fn strings(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|(_, v)| match v {
            EventValue::Str(s) => Some(s.as_ref()),
            _ => None,
        })
    }
}

impl rsigma_eval::Event for Fields<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0
            .iter()
            .find(|(k, _)| *k == path)
            .map(|(_, v)| match v {
                EventValue::Str(s) => EventValue::Str(Cow::Borrowed(s.as_ref())),
                v => v.clone(),
            })
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.strings().any(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.strings().map(Cow::Borrowed).collect()
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect(),
        )
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        Some(self.0.iter().map(|(k, _)| Cow::Borrowed(*k)).collect())
    }
}

/// A string of a record as the program had it: the log doubles backslashes and writes bytes
/// that are not UTF-8 as `\xNN` (those become U+FFFD here).
fn raw(s: &str) -> Cow<'_, str> {
    if s.contains('\\') {
        Cow::Owned(String::from_utf8_lossy(&unescape(s)).into_owned())
    } else {
        Cow::Borrowed(s)
    }
}

fn text(s: &str) -> EventValue<'_> {
    EventValue::Str(raw(s))
}

fn int(n: impl Into<i64>) -> EventValue<'static> {
    EventValue::Int(n.into())
}

/// A process's program: its latest exec, or its parent's image when it forked without one.
struct Image {
    image: String,
    command_line: String,
}

struct Process {
    ppid: u32,
    image: Option<Rc<Image>>,
}

/// The session as of one record. The fields of a record are what was true when it was written
/// (the parent's image then, not its last), so this is built as the records go by rather than
/// from the whole session's process tree.
#[derive(Default)]
struct Session<'a> {
    processes: HashMap<u32, Process>,
    /// The name whose DNS answer last held an address.
    names: HashMap<&'a str, &'a str>,
    /// The session's user, to name a uid.
    user: Option<(u32, &'a str)>,
}

impl<'a> Session<'a> {
    fn image(&self, pid: u32) -> Option<&Image> {
        self.processes.get(&pid)?.image.as_deref()
    }

    /// `Image` and `ProcessId` of the process that made a record.
    fn process(&self, pid: u32) -> Vec<(&'static str, EventValue<'_>)> {
        let mut f = vec![("ProcessId", int(pid))];
        if let Some(i) = self.image(pid) {
            f.push(("Image", EventValue::Str(Cow::Borrowed(&i.image))));
        }
        f
    }

    fn parent<'s>(&'s self, ppid: u32, f: &mut Vec<(&'static str, EventValue<'s>)>) {
        f.push(("ParentProcessId", int(ppid)));
        if let Some(p) = self.image(ppid) {
            f.push(("ParentImage", EventValue::Str(Cow::Borrowed(&p.image))));
            f.push((
                "ParentCommandLine",
                EventValue::Str(Cow::Borrowed(&p.command_line)),
            ));
        }
    }

    fn user(&self, uid: u32) -> EventValue<'a> {
        match self.user {
            Some((u, name)) if u == uid => EventValue::Str(Cow::Borrowed(name)),
            _ => EventValue::Str(Cow::Owned(uid.to_string())),
        }
    }

    /// What Sigma sees of one record: none, one, or several events (a rename writes two names).
    fn events<'s>(&'s self, rec: &'s Record) -> Vec<(Category, Fields<'s>)> {
        let exec = |pid: u32, filename: &'s str, argv: &[String]| {
            vec![
                ("Image", text(filename)),
                (
                    "CommandLine",
                    EventValue::Str(Cow::Owned(raw(&argv.join(" ")).into_owned())),
                ),
                ("ProcessId", int(pid)),
            ]
        };
        let mut out = Vec::new();
        match &rec.event {
            Event::Exec(e) => {
                let mut f = exec(e.pid, &e.filename, &e.argv);
                self.parent(e.ppid, &mut f);
                f.push(("User", self.user(e.uid)));
                out.push((Category::ProcessCreation, Fields(f)));
            }
            // A refused exec is what the agent tried (an allowed one is followed by its exec).
            Event::ExecRequest(x) if x.verdict == Verdict::Deny => {
                let mut f = exec(x.pid, &x.filename, &x.argv);
                if let Some(p) = self.processes.get(&x.pid) {
                    self.parent(p.ppid, &mut f);
                }
                out.push((Category::ProcessCreation, Fields(f)));
            }
            Event::NetConnect(n) => {
                let mut f = self.process(n.pid);
                f.extend([
                    ("DestinationIp", text(&n.address)),
                    ("DestinationPort", int(n.port)),
                    ("Initiated", EventValue::Str(Cow::Borrowed("true"))),
                    ("Protocol", text(&n.transport)),
                    ("User", self.user(n.uid)),
                ]);
                let name = self.names.get(n.address.as_str()).copied();
                if let Some(name) = name.or(n.domain.as_deref()) {
                    f.push(("DestinationHostname", text(name)));
                }
                out.push((Category::NetworkConnection, Fields(f)));
            }
            Event::DnsQuery(q) => {
                out.push((
                    Category::DnsQuery,
                    Fields(vec![("QueryName", text(&q.name))]),
                ));
            }
            e => {
                let Some(file) = e.file_access() else {
                    return out;
                };
                let with = |key, path| {
                    let mut f = self.process(file.pid);
                    f.push((key, text(path)));
                    Fields(f)
                };
                for path in written_paths(e) {
                    out.push((Category::FileEvent, with("TargetFilename", path)));
                }
                if let Event::FileUnlink(f) = e {
                    out.push((Category::FileDelete, with("TargetFilename", &f.path)));
                }
                // An O_PATH open reads nothing: a tool looking whether a file is there.
                if let Some(path) = read_path(e)
                    && !file.flags.as_deref().is_some_and(|f| f.contains("O_PATH"))
                {
                    out.push((Category::FileAccess, with("FileName", path)));
                }
            }
        }
        out
    }

    /// What a record changes for the records after it.
    fn update(&mut self, rec: &'a Record) {
        match &rec.event {
            Event::SessionStart(s) => self.user = Some((s.uid, &s.user)),
            Event::Fork(f) => {
                let image = self.processes.get(&f.ppid).and_then(|p| p.image.clone());
                self.processes.insert(
                    f.pid,
                    Process {
                        ppid: f.ppid,
                        image,
                    },
                );
            }
            Event::Exec(e) => {
                let image = Some(Rc::new(Image {
                    image: raw(&e.filename).into_owned(),
                    command_line: raw(&e.argv.join(" ")).into_owned(),
                }));
                self.processes
                    .entry(e.pid)
                    .or_insert(Process {
                        ppid: e.ppid,
                        image: None,
                    })
                    .image = image;
            }
            Event::Exit(x) => {
                self.processes.remove(&x.pid);
            }
            Event::DnsQuery(q) => {
                for a in &q.answers {
                    self.names.insert(a, &q.name);
                }
            }
            _ => {}
        }
    }
}
