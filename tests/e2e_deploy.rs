//! The cloud deployment files, offline: the CloudFormation stack passes cfn-lint, the
//! kustomize base, overlay and jobs render with kubectl and every object passes
//! kubernetes-validate (KEDA's ScaledObject: KEDA's CRD models), and every bucketlens
//! command line, environment variable and config file in them is accepted by the
//! binary. Broken copies of each fail, so each check is shown to bite.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_default();
    assert!(path.is_file(), "{var} is not set to a file: run the tests with scripts/test, which installs it");
    path
}

fn printed(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `python -c SCRIPT ARGS` in the validators' venv, `input` on stdin.
fn python(script: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(tool("DEPLOY_PYTHON"))
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    child.wait_with_output().unwrap()
}

/// A copy of `dir` (recursively) in `into`, with `from` replaced by `to` in `file`.
fn broken_copy(dir: &Path, into: &Path, file: &str, from: &str, to: &str) -> PathBuf {
    let copy = into.join(dir.file_name().unwrap());
    copy_dir(dir, &copy);
    let text = std::fs::read_to_string(copy.join(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?} to break");
    std::fs::write(copy.join(file), text.replacen(from, to, 1)).unwrap();
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// ---- CloudFormation ---------------------------------------------------------------

fn template() -> PathBuf {
    root().join("deploy/aws/bucketlens.yaml")
}

fn cfn_lint(file: &Path) -> Output {
    Command::new(tool("CFN_LINT")).arg(file).output().unwrap()
}

/// The template as JSON, its short-form tags as `{"Ref": …}`, `{"Fn::If": …}`.
fn template_json(file: &Path) -> Value {
    let script = "import json, sys\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\n\
                  if m:\n    sys.exit('\\n'.join(str(x) for x in m))\njson.dump(t, sys.stdout)";
    let out = python(script, &[file.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", printed(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_cloudformation_stack_passes_cfn_lint_and_broken_copies_fail() {
    let out = cfn_lint(&template());
    assert!(out.status.success(), "cfn-lint on deploy/aws/bucketlens.yaml:\n{}", printed(&out));
    let tmp = tempfile::tempdir().unwrap();
    let aws = root().join("deploy/aws");
    for (from, to, code) in [
        ("VisibilityTimeout: 120", "VisibilityTimout: 120", "E3002"),
        ("Queues: [!Ref EventsQueue]", "Queues: [!Ref EventQueue]", "E3005"),
    ] {
        let dir = tmp.path().join(code);
        let copy = broken_copy(&aws, &dir, "bucketlens.yaml", from, to);
        let out = cfn_lint(&copy.join("bucketlens.yaml"));
        let said = printed(&out);
        assert!(!out.status.success() && said.contains(code), "cfn-lint missed {to:?} ({code}):\n{said}");
    }
}

/// A value of the template with placeholders for what only AWS knows: parameters
/// take their defaults, resources and attributes stand-ins of their shape.
fn resolve(value: &Value, params: &BTreeMap<String, String>) -> String {
    let stand_in = |name: &str| match name {
        "EventsQueue" => "https://sqs.eu-west-1.amazonaws.com/123456789012/bucketlens-events".to_string(),
        "Bootstrap.Servers" => "b-1.example.kafka-serverless.eu-west-1.amazonaws.com:9098".to_string(),
        "ServeToken" => "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token".to_string(),
        other => params.get(other).cloned().unwrap_or_else(|| format!("{other}-placeholder")),
    };
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.contains_key("Ref") => stand_in(o["Ref"].as_str().unwrap()),
        Value::Object(o) if o.contains_key("Fn::GetAtt") => {
            let parts: Vec<&str> = o["Fn::GetAtt"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            stand_in(&parts.join("."))
        }
        // Both branches are checked where it matters: the first here.
        Value::Object(o) if o.contains_key("Fn::If") => resolve(&o["Fn::If"][1], params),
        Value::Object(o) if o.contains_key("Fn::Sub") => {
            let text = o["Fn::Sub"].as_str().unwrap_or_default();
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').unwrap() + start;
                out.push_str(&stand_in(&rest[start + 2..end]).replace(['.', ':'], "-"));
                rest = &rest[end + 1..];
            }
            out + rest
        }
        other => panic!("cannot resolve {other}"),
    }
}

/// One bucketlens process as a deployment file starts it.
#[derive(Debug)]
struct Process {
    what: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    config: Option<String>,
}

/// Every container of the stack that runs bucketlens: ECS task definitions and
/// Batch job definitions.
fn stack_processes(template: &Value) -> Vec<Process> {
    let params: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, p)| p.get("Default").map(|d| (k.clone(), resolve(d, &BTreeMap::new()))))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    let mut processes = Vec::new();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        let containers: Vec<&Value> = match resource["Type"].as_str().unwrap() {
            "AWS::ECS::TaskDefinition" => {
                resource["Properties"]["ContainerDefinitions"].as_array().unwrap().iter().collect()
            }
            "AWS::Batch::JobDefinition" => vec![&resource["Properties"]["ContainerProperties"]],
            _ => continue,
        };
        let batch_params = &resource["Properties"]["Parameters"];
        // The topic task runs Apache Kafka's tools: see the topics test.
        for container in containers.into_iter().filter(|c| c["Image"]["Ref"] == "ContainerImage") {
            let args = container["Command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let a = resolve(a, &params);
                    match a.strip_prefix("Ref::") {
                        Some(p) => batch_params[p].as_str().unwrap().to_string(),
                        None => a,
                    }
                })
                .collect();
            let mut env: Vec<(String, String)> = container["Environment"]
                .as_array()
                .map(|e| {
                    e.iter().map(|v| (v["Name"].as_str().unwrap().into(), resolve(&v["Value"], &params))).collect()
                })
                .unwrap_or_default();
            for secret in container["Secrets"].as_array().into_iter().flatten() {
                env.push((secret["Name"].as_str().unwrap().into(), "a-secret-of-32-characters-xxxxxx".into()));
            }
            processes.push(Process { what: format!("deploy/aws {name}"), args, env, config: None });
        }
    }
    processes
}

/// What the binary says of `process`: its command line parses and its settings
/// pass (`config check -- ARGS`). Empty when both hold.
fn problems(process: &Process, tmp: &Path) -> Vec<String> {
    let binary = env!("CARGO_BIN_EXE_bucketlens");
    let mut found = Vec::new();
    let command = |args: &[String]| {
        let mut cmd = Command::new(binary);
        cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).current_dir(tmp);
        cmd.envs(process.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(config) = &process.config {
            let file = tmp.join(format!("{}.toml", process.what.replace(['/', ' '], "-")));
            std::fs::write(&file, config).unwrap();
            cmd.env("BUCKETLENS_CONFIG", file);
        }
        cmd.output().unwrap()
    };
    // `config check -- ARGS` parses the command line with the binary's own parser,
    // required arguments and value checks included, and runs nothing.
    let mut check: Vec<String> = vec!["config".into(), "check".into(), "--".into()];
    check.extend(process.args.iter().cloned());
    let out = command(&check);
    if !out.status.success() {
        found.push(format!(
            "{}: `bucketlens {}` or its settings fail `config check`: {}",
            process.what,
            process.args.join(" "),
            printed(&out)
        ));
    }
    // A replay's group must be the one its settings name (labeler or index group).
    if process.args.first().map(String::as_str) == Some("replay") {
        let group = process.args.iter().skip_while(|a| *a != "--group").nth(1).cloned().unwrap_or_default();
        let named = process.env.iter().any(|(k, v)| k.ends_with("__GROUP") && *v == group);
        if !named {
            found.push(format!("{}: replay --group {group} is not the group its settings name", process.what));
        }
    }
    found
}

#[test]
fn every_command_and_setting_of_the_stack_is_accepted_by_the_binary_and_a_renamed_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let processes = stack_processes(&template_json(&template()));
    let roles: Vec<&str> = processes.iter().map(|p| p.args[0].as_str()).collect();
    for role in ["produce", "label", "sink", "serve", "replay", "act"] {
        assert!(roles.contains(&role), "no {role} in the stack: {roles:?}");
    }
    let found: Vec<String> = processes.iter().flat_map(|p| problems(p, tmp.path())).collect();
    assert!(found.is_empty(), "{}", found.join("\n"));

    let aws = root().join("deploy/aws");
    for (from, to) in [
        (
            "Command: [produce, events, --sqs, !Ref EventsQueue]",
            "Command: [produce, events, --queue, !Ref EventsQueue]",
        ),
        ("BUCKETLENS_LABELER__REKOGNITION__MAX_TPS", "BUCKETLENS_LABELER__REKOGNITION__MAX_RATE"),
        (
            "Command: [replay, --group, !Ref ReplayGroup, --until-end]",
            "Command: [replay, --group, bucketlens-x, --until-end]",
        ),
        // A required argument left out: clap's own check, which `--help` skipped.
        ("Command: [produce, inventory, Ref::manifest]", "Command: [produce, inventory]"),
        (
            "{ Name: BUCKETLENS_ACT__RULES, Value: !Ref ActRules }",
            "{ Name: BUCKETLENS_ACT__RULE, Value: !Ref ActRules }",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let copy = broken_copy(&aws, dir.path(), "bucketlens.yaml", from, to);
        let broken = stack_processes(&template_json(&copy.join("bucketlens.yaml")));
        let found: Vec<String> = broken.iter().flat_map(|p| problems(p, tmp.path())).collect();
        assert!(!found.is_empty(), "{to:?} was not noticed");
    }
}

/// The one-shot topic task creates every topic bucketlens uses, compacted where
/// bucketlens compacts it: its script, line by line.
fn topic_problems(template: &Value) -> Vec<String> {
    let task = &template["Resources"]["TopicsTask"]["Properties"]["ContainerDefinitions"][0];
    let script = resolve(&task["Command"][0], &BTreeMap::new());
    let mut found = Vec::new();
    // act's default output topic too: bucketlens may not create topics on MSK with IAM.
    let matched = [(bucketlens_schemas::topics::IMAGES_MATCHED, false)];
    for (topic, compacted) in bucketlens_schemas::topics::ALL.into_iter().chain(matched) {
        let line = script.lines().find(|l| l.trim_start().starts_with(&format!("create {topic}")));
        match line {
            None => found.push(format!("the topic task does not create {topic}")),
            Some(l) if l.contains("cleanup.policy=compact") != compacted => {
                found.push(format!("the topic task creates {topic} with the wrong cleanup policy: {l}"))
            }
            Some(_) => {}
        }
    }
    found
}

#[test]
fn the_stacks_topic_task_creates_every_topic_as_bucketlens_expects_it() {
    assert_eq!(topic_problems(&template_json(&template())), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let copy = broken_copy(
        &root().join("deploy/aws"),
        dir.path(),
        "bucketlens.yaml",
        "create images.labeled.v1 --config cleanup.policy=compact",
        "create images.labeled.v1",
    );
    assert_eq!(topic_problems(&template_json(&copy.join("bucketlens.yaml"))).len(), 1);
}

/// The S3 actions a task role's policies allow on the images bucket, and on its objects.
fn images_bucket_actions(template: &Value, role: &str) -> (Vec<String>, Vec<String>) {
    let (mut bucket, mut objects) = (Vec::new(), Vec::new());
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array().unwrap();
    for policy in policies {
        for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
            let resource = statement["Resource"]["Fn::Sub"].as_str().unwrap_or_default();
            let actions: Vec<String> = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().filter_map(|a| a.as_str().map(String::from)).collect(),
                _ => Vec::new(),
            };
            if resource.ends_with("${ImagesBucketName}") {
                bucket.extend(actions);
            } else if resource.ends_with("${ImagesBucketName}/*") {
                objects.extend(actions);
            }
        }
    }
    (bucket, objects)
}

/// What no linter knows: the roles that read images may list the bucket (else a
/// missing key is a 403, and a delete an AccessDenied failure), and serve may read
/// the object version its index names.
#[test]
fn the_roles_that_read_images_may_list_the_bucket_and_read_versions() {
    let template = template_json(&template());
    for role in ["LabelTaskRole", "ServeTaskRole"] {
        let (bucket, objects) = images_bucket_actions(&template, role);
        assert!(bucket.contains(&"s3:ListBucket".to_string()), "{role}: s3:ListBucket on the bucket: {bucket:?}");
        for action in ["s3:GetObject", "s3:GetObjectVersion"] {
            assert!(objects.contains(&action.to_string()), "{role}: {action} on its objects: {objects:?}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = broken_copy(
        &root().join("deploy/aws"),
        dir.path(),
        "bucketlens.yaml",
        "                Action: s3:ListBucket",
        "                Action: s3:GetBucketLocation",
    );
    let (bucket, _) = images_bucket_actions(&template_json(&copy.join("bucketlens.yaml")), "LabelTaskRole");
    assert!(!bucket.contains(&"s3:ListBucket".to_string()), "the check sees a missing s3:ListBucket");

    // act keeps the objects' own tags: it reads them, then writes them back with its
    // own, on the current object and on the version that matched.
    let (_, objects) = images_bucket_actions(&template, "ActTaskRole");
    for action in
        ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectVersionTagging"]
    {
        assert!(objects.contains(&action.to_string()), "ActTaskRole: {action} on the images: {objects:?}");
    }
}

/// What the stack's serve, topics and alarms must be that no linter knows, as
/// problems: serve only over HTTPS (HTTP redirects), from AllowedCidr; every service
/// after the topics; every alarm notifying AlarmTopicArn; the replay group one the
/// roles may use.
fn stack_rules(template: &Value) -> Vec<String> {
    let resources = template["Resources"].as_object().unwrap();
    let of_type = |t: &str| resources.iter().filter(move |(_, r)| r["Type"] == t).collect::<Vec<_>>();
    let mut problems = Vec::new();
    let listeners = of_type("AWS::ElasticLoadBalancingV2::Listener");
    let https = listeners.iter().find(|(_, l)| l["Properties"]["Protocol"] == "HTTPS");
    match https {
        Some((_, l)) if l["Properties"]["Certificates"][0]["CertificateArn"]["Ref"] == "CertificateArn" => {}
        _ => problems.push("no HTTPS listener with the CertificateArn certificate".to_string()),
    }
    for (name, l) in &listeners {
        let action = &l["Properties"]["DefaultActions"][0];
        if l["Properties"]["Protocol"] == "HTTP" && action["RedirectConfig"]["Protocol"] != "HTTPS" {
            problems.push(format!("{name}: plain HTTP does more than redirect to HTTPS: {action}"));
        }
    }
    for (name, group) in of_type("AWS::EC2::SecurityGroup") {
        for rule in group["Properties"]["SecurityGroupIngress"].as_array().into_iter().flatten() {
            if rule.get("CidrIp").is_some() && rule["CidrIp"]["Ref"] != "AllowedCidr" {
                problems.push(format!("{name}: ingress from {} rather than AllowedCidr", rule["CidrIp"]));
            }
        }
    }
    for (name, service) in of_type("AWS::ECS::Service") {
        let depends: Vec<&str> = match &service["DependsOn"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(all) => all.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !depends.contains(&"Topics") {
            problems.push(format!("{name} may start before the topics exist (DependsOn: {depends:?})"));
        }
    }
    if resources.get("Topics").map(|t| &t["Properties"]["TaskDefinition"]["Ref"]) != Some(&"TopicsTask".into()) {
        problems.push("no custom resource Topics running the TopicsTask".to_string());
    }
    for (name, alarm) in of_type("AWS::CloudWatch::Alarm") {
        if !alarm["Properties"]["AlarmActions"].to_string().contains("AlarmTopicArn") {
            problems.push(format!("{name} notifies no one"));
        }
    }
    let replay = &template["Parameters"]["ReplayGroup"];
    let pattern = replay["AllowedPattern"].as_str().unwrap_or("");
    if !pattern.starts_with("^bucketlens-") || !replay["Default"].as_str().unwrap_or("").starts_with("bucketlens-") {
        problems.push(format!("ReplayGroup may name a group the roles cannot use: {replay}"));
    }
    problems
}

#[test]
fn serve_is_https_only_services_wait_for_the_topics_and_alarms_notify() {
    let problems = stack_rules(&template_json(&template()));
    assert!(problems.is_empty(), "{problems:#?}");
    for (from, to, what) in [
        ("        - Type: redirect\n          RedirectConfig:\n            Protocol: HTTPS", "        - Type: forward\n          TargetGroupArn: !Ref ServeTargets\n          RedirectConfig:\n            Protocol: HTTP", "plain HTTP"),
        ("    DependsOn: [ServeHttpsListener, Topics]", "    DependsOn: [ServeHttpsListener]", "before the topics"),
        ("          FromPort: 443\n          ToPort: 443\n          CidrIp: !Ref AllowedCidr", "          FromPort: 443\n          ToPort: 443\n          CidrIp: 0.0.0.0/0", "rather than AllowedCidr"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let copy = broken_copy(&root().join("deploy/aws"), dir.path(), "bucketlens.yaml", from, to);
        let problems = stack_rules(&template_json(&copy.join("bucketlens.yaml")));
        assert!(problems.iter().any(|p| p.contains(what)), "{to:?} was not noticed: {problems:?}");
    }
}

// ---- Kubernetes --------------------------------------------------------------------

fn kustomize(dir: &Path) -> Output {
    Command::new(tool("KUBECTL")).arg("kustomize").arg(dir).output().unwrap()
}

/// The rendered objects, as JSON.
fn objects(rendered: &[u8]) -> Vec<Value> {
    let script = "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)";
    let out = python(script, &[], rendered);
    assert!(out.status.success(), "{}", printed(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// kubernetes-validate --strict on the core objects, KEDA's models on the
/// ScaledObjects (every key must be one the model knows). The failures, if any.
fn validate(objects: &[Value], tmp: &Path) -> Option<String> {
    let (keda, core): (Vec<&Value>, Vec<&Value>) =
        objects.iter().partition(|o| o["apiVersion"].as_str().unwrap_or_default().starts_with("keda.sh/"));
    let file = tmp.join("core.json");
    let mut failures = String::new();
    for (i, object) in core.iter().enumerate() {
        let file = file.with_file_name(format!("object-{i}.json"));
        std::fs::write(&file, serde_json::to_vec(object).unwrap()).unwrap();
        let out =
            Command::new(tool("KUBERNETES_VALIDATE")).args(["--strict", "-k", "1.34.0"]).arg(&file).output().unwrap();
        if !out.status.success() {
            failures.push_str(&printed(&out));
        }
    }
    let script = r#"
import json, sys
from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication
MODELS = {"ScaledObject": ScaledObject, "TriggerAuthentication": TriggerAuthentication}
def unknown(given, known, at):
    if isinstance(given, dict):
        for k, v in given.items():
            if not isinstance(known, dict) or k not in known:
                yield at + "." + k
            else:
                yield from unknown(v, known[k], at + "." + k)
    elif isinstance(given, list) and isinstance(known, list):
        for i, (g, k) in enumerate(zip(given, known)):
            yield from unknown(g, k, at + f"[{i}]")
bad = []
for doc in json.load(sys.stdin):
    try:
        model = MODELS[doc["kind"]].model_validate(doc)
    except Exception as e:
        bad.append(str(e)); continue
    bad += ["unknown field " + p for p in unknown(doc, model.model_dump(by_alias=True, exclude_none=True), "")]
if bad:
    sys.exit("\n".join(bad))
"#;
    assert!(!keda.is_empty() || objects.iter().all(|o| o["kind"] != "ScaledObject"));
    let out = python(script, &[], &serde_json::to_vec(&keda).unwrap());
    if !out.status.success() {
        failures.push_str(&printed(&out));
    }
    (!failures.is_empty()).then_some(failures)
}

const K8S: [&str; 8] = [
    "base",
    "overlays/example",
    "jobs/replay",
    "jobs/inventory",
    "jobs/topics",
    "overlays/example/jobs/replay",
    "overlays/example/jobs/inventory",
    "overlays/example/jobs/topics",
];

#[test]
fn the_kustomizations_render_and_every_object_validates_and_broken_copies_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let k8s = root().join("deploy/k8s");
    let mut kinds = Vec::new();
    for dir in K8S {
        let out = kustomize(&k8s.join(dir));
        assert!(out.status.success(), "kubectl kustomize {dir}: {}", printed(&out));
        let objects = objects(&out.stdout);
        kinds.extend(objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()));
        if let Some(failures) = validate(&objects, tmp.path()) {
            panic!("deploy/k8s/{dir}:\n{failures}");
        }
    }
    for kind in ["Deployment", "ScaledObject", "TriggerAuthentication", "Job", "ConfigMap", "Service"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} rendered: {kinds:?}");
    }
    for (file, from, to) in [
        ("base/label.yaml", "containerPort: 9464", "containerPot: 9464"),
        ("base/label-scaledobject.yaml", "scaleTargetRef:", "scaleTarget:"),
        ("base/label-scaledobject.yaml", "pollingInterval: 15", "pollingInterval: 15\n  pollingIntervall: 15"),
        ("jobs/replay/job.yaml", "completions: 4", "completions: four"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let copy = broken_copy(&k8s, dir.path(), file, from, to);
        let out = kustomize(&copy.join(Path::new(file).parent().unwrap()));
        assert!(out.status.success(), "{}", printed(&out));
        assert!(validate(&objects(&out.stdout), tmp.path()).is_some(), "{file}: {to:?} was not noticed");
    }
    // A resource that is not there fails the render itself.
    let dir = tempfile::tempdir().unwrap();
    let copy = broken_copy(&k8s, dir.path(), "base/kustomization.yaml", "  - sink.yaml", "  - sinks.yaml");
    assert!(!kustomize(&copy.join("base")).status.success());
}

/// Every container of the rendered objects, with `$(VAR)` in its args expanded the
/// way the kubelet does, its env (ConfigMap literals and placeholders for Secrets)
/// and its config file (the mounted ConfigMap's bucketlens.toml).
fn cluster_processes(objects: &[Value], what: &str) -> Vec<Process> {
    let config_map = |name: &str| objects.iter().find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name);
    let mut processes = Vec::new();
    for object in objects {
        let spec = match object["kind"].as_str().unwrap() {
            "Deployment" | "Job" => &object["spec"]["template"]["spec"],
            _ => continue,
        };
        for container in spec["containers"].as_array().unwrap() {
            if !container["image"].as_str().unwrap_or_default().contains("bucketlens") {
                continue; // the topics job's Kafka tools
            }
            let mut env: Vec<(String, String)> = Vec::new();
            for from in container["envFrom"].as_array().into_iter().flatten() {
                let map = config_map(from["configMapRef"]["name"].as_str().unwrap()).expect("a ConfigMap it names");
                for (k, v) in map["data"].as_object().unwrap() {
                    env.push((k.clone(), v.as_str().unwrap().to_string()));
                }
            }
            for var in container["env"].as_array().into_iter().flatten() {
                let value = match var.get("value") {
                    Some(v) => v.as_str().unwrap().to_string(),
                    None => "a-secret-of-32-characters-xxxxxx".to_string(),
                };
                env.push((var["name"].as_str().unwrap().to_string(), value));
            }
            let args = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let mut a = a.as_str().unwrap().to_string();
                    for (k, v) in &env {
                        a = a.replace(&format!("$({k})"), v);
                    }
                    assert!(!a.contains("$("), "{a}: a variable the container does not have");
                    a
                })
                .collect();
            let config =
                config_map("bucketlens-config").map(|m| m["data"]["bucketlens.toml"].as_str().unwrap().to_string());
            env.retain(|(k, _)| k != "BUCKETLENS_CONFIG");
            let name = object["metadata"]["name"].as_str().unwrap();
            processes.push(Process { what: format!("deploy/k8s/{what} {name}"), args, env, config });
        }
    }
    processes
}

#[test]
fn every_command_and_setting_of_the_kustomizations_is_accepted_by_the_binary_and_a_renamed_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let k8s = root().join("deploy/k8s");
    let render = |dir: &Path| {
        let out = kustomize(dir);
        assert!(out.status.success(), "{}", printed(&out));
        objects(&out.stdout)
    };
    let base = render(&k8s.join("base"));
    let overlay = render(&k8s.join("overlays/example"));
    let mut all = Vec::new();
    for dir in K8S {
        let mut objects = render(&k8s.join(dir));
        // The jobs run beside a deployment: its ConfigMaps.
        if dir.starts_with("jobs/") {
            objects.extend(base.iter().filter(|o| o["kind"] == "ConfigMap").cloned());
        } else if dir.starts_with("overlays/example/jobs/") {
            objects.extend(overlay.iter().filter(|o| o["kind"] == "ConfigMap").cloned());
        }
        all.extend(cluster_processes(&objects, dir));
    }
    let roles: Vec<&str> = all.iter().map(|p| p.args[0].as_str()).collect();
    for role in ["produce", "label", "sink", "serve", "replay", "act"] {
        assert!(roles.contains(&role), "no {role} in deploy/k8s: {roles:?}");
    }
    let found: Vec<String> = all.iter().flat_map(|p| problems(p, tmp.path())).collect();
    assert!(found.is_empty(), "{}", found.join("\n"));

    for (file, from, to) in [
        ("base/label.yaml", "args: [\"label\"]", "args: [\"label\", \"--fast\"]"),
        ("base/bucketlens.toml", "replication-factor = 3", "replication = 3"),
        ("base/bucketlens.toml", "query = \"person\"", "query = \"person AND (\""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let copy = broken_copy(&k8s, dir.path(), file, from, to);
        let processes = cluster_processes(&render(&copy.join("base")), "base");
        let found: Vec<String> = processes.iter().flat_map(|p| problems(p, tmp.path())).collect();
        assert!(!found.is_empty(), "{file}: {to:?} was not noticed");
    }
}

/// What no validator knows about the manifests: KEDA alone sets the labeler's
/// replicas, serve advertises only the port it listens on, the example overlay's
/// jobs run the overlay's image, and its KEDA trigger signs in to MSK with IAM.
#[test]
fn the_manifests_scale_advertise_and_sign_in_as_their_deployment_needs() {
    let k8s = root().join("deploy/k8s");
    let render = |dir: &str| {
        let out = kustomize(&k8s.join(dir));
        assert!(out.status.success(), "{}", printed(&out));
        objects(&out.stdout)
    };
    let find = |objects: &[Value], kind: &str, name: &str| -> Value {
        let found = objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name);
        found.unwrap_or_else(|| panic!("no {kind} {name}")).clone()
    };
    let base = render("base");
    let label = find(&base, "Deployment", "label");
    assert!(label["spec"].get("replicas").is_none(), "KEDA owns label's replicas: {}", label["spec"]);
    let serve = &find(&base, "Deployment", "serve")["spec"]["template"]["spec"]["containers"][0];
    let ports: Vec<u64> =
        serve["ports"].as_array().unwrap().iter().map(|p| p["containerPort"].as_u64().unwrap()).collect();
    let listen = serve["env"].as_array().unwrap().iter().find(|e| e["name"] == "BUCKETLENS_SERVE__LISTEN").unwrap();
    let listen_port: u64 = listen["value"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(ports, vec![listen_port], "serve listens on {listen} alone");

    let overlay = render("overlays/example");
    let image = find(&overlay, "Deployment", "label")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    for job in ["replay", "inventory"] {
        let objects = render(&format!("overlays/example/jobs/{job}"));
        let container = &objects[0]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], image, "the {job} job runs the overlay's image");
        assert_eq!(objects[0]["metadata"]["namespace"], "bucketlens");
    }
    let trigger = &find(&overlay, "ScaledObject", "label")["spec"]["triggers"][0];
    assert_eq!(trigger["metadata"]["sasl"], "aws_msk_iam", "{trigger}");
    assert_eq!(trigger["metadata"]["tls"], "enable", "{trigger}");
    let auth = trigger["authenticationRef"]["name"].as_str().unwrap();
    assert_eq!(find(&overlay, "TriggerAuthentication", auth)["spec"]["podIdentity"]["provider"], "aws");
    let brokers = trigger["metadata"]["bootstrapServers"].as_str().unwrap();
    assert!(brokers.ends_with(":9098"), "MSK's IAM listener: {brokers}");
}
