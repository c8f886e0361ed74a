import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseYaml } from "../../src/prom/config.ts";
import { goUrlParseError } from "../../src/prom/go-url.ts";
import { namespacesToWatch, parseKubernetesSdConfig, selectorFor } from "../../src/prom/sd/kubernetes.ts";

// Messages as Prometheus 3.16 reports them (its config/testdata/kubernetes_*.yml cases and more),
// checked against SDConfig.UnmarshalYAML run on the same YAML.

const P = "kubernetes_sd_configs[0]";
const check = (yaml: string) => parseKubernetesSdConfig(parseYaml(yaml, "t.yml"), P);
const messages = (yaml: string) => check(yaml).errors.map((e) => e.message);

describe("parseKubernetesSdConfig", () => {
  const good: [string, string][] = [
    ["in-cluster endpoints", "role: endpoints"],
    ["kubeconfig without api_server", "role: endpoints\nkubeconfig_file: /user1/.kube/config"],
    [
      "endpoints selectors",
      "role: endpoints\nselectors:\n- {role: pod, label: foo=bar, field: metadata.status=Running}\n- {role: service, label: foo=bar}\n- {role: endpoints, field: metadata.status=Running}",
    ],
    ["node selector", "role: node\nselectors:\n- {role: node, label: foo=bar, field: metadata.status=Running}"],
    ["ingress selector", "role: ingress\nselectors:\n- {role: ingress, label: foo=bar}"],
    [
      "pod set selector",
      "role: pod\nselectors:\n- {role: pod, label: 'foo in (bar,baz)', field: metadata.status=Running}",
    ],
    ["pod with node selector", "role: pod\nselectors:\n- {role: node, label: foo=bar}"],
    ["service selector", "role: service\nselectors:\n- {role: service, label: foo=bar}"],
    [
      "endpointslice selectors",
      "role: endpointslice\nselectors:\n- {role: endpointslice}\n- {role: pod}\n- {role: service}",
    ],
    [
      "api_server with HTTP settings",
      "role: pod\napi_server: https://localhost:1234\nbasic_auth: {username: u, password: p}",
    ],
    [
      "default-valued HTTP settings with kubeconfig",
      "role: pod\nkubeconfig_file: k\nfollow_redirects: true\ntls_config: {}\nbearer_token: ''",
    ],
    ["an empty api_server is set", "role: pod\napi_server: ''"],
    [
      "attach_metadata on any role",
      "role: node\nattach_metadata: {node: true, namespace: true, deployment: true, job: true, cronjob: true}",
    ],
    ["YAML 1.1 booleans", "role: pod\nnamespaces: {own_namespace: yes}"],
  ];
  for (const [name, yaml] of good) {
    it(`accepts ${name}`, () => assert.deepEqual(messages(yaml), []));
  }

  const bad: [string, string, string, string][] = [
    [
      "HTTP settings without api_server",
      "role: pod\nauthorization:\n  credentials: 1234",
      `${P}.api_server`,
      "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
    ],
    [
      "kubeconfig with own_namespace",
      "role: endpoints\nkubeconfig_file: /home/User1/.kubeconfig\nnamespaces:\n  own_namespace: true",
      `${P}.namespaces.own_namespace`,
      "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
    ],
    [
      "api_server with own_namespace",
      "role: endpoints\napi_server: https://localhost:1234\nnamespaces:\n  own_namespace: true",
      `${P}.namespaces.own_namespace`,
      "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
    ],
    [
      "kubeconfig with api_server",
      "role: endpoints\napi_server: https://localhost:1234\nkubeconfig_file: /user1/.kube/config",
      `${P}.kubeconfig_file`,
      "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
    ],
    [
      "kubeconfig with HTTP settings",
      "role: endpoints\nkubeconfig_file: /user1/.kube/config\nbasic_auth:\n  username: user\n  password: password",
      `${P}.kubeconfig_file`,
      "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
    ],
    [
      "kubeconfig with follow_redirects off",
      "role: pod\nkubeconfig_file: k\nfollow_redirects: false",
      `${P}.kubeconfig_file`,
      "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
    ],
    [
      "bearer token twice",
      "role: node\napi_server: https://localhost:1234\nbearer_token: 1234\nbearer_token_file: somefile",
      `${P}.bearer_token_file`,
      "at most one of bearer_token & bearer_token_file must be configured",
    ],
    [
      "bearer token with basic auth",
      "role: pod\napi_server: https://localhost:1234\nbearer_token: 1234\nbasic_auth:\n  username: user",
      P,
      "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
    ],
    [
      "authorization with basic auth",
      "role: pod\napi_server: https://localhost:1234\nauthorization:\n  credentials: 1234\nbasic_auth:\n  username: user",
      P,
      "at most one of basic_auth, oauth2 & authorization must be configured",
    ],
    [
      "authorization type basic",
      "role: pod\napi_server: http://x\nauthorization:\n  type: ' Basic '",
      `${P}.authorization.type`,
      'authorization type cannot be set to "basic", use "basic_auth" instead',
    ],
    [
      "unknown role",
      "api_server: kubernetes:443\nrole: vacation",
      `${P}.role`,
      'unknown Kubernetes SD role "vacation"',
    ],
    [
      "missing role",
      "api_server: http://x",
      `${P}.role`,
      "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
    ],
    [
      "endpoints with a node selector",
      "role: endpoints\nselectors:\n- {role: node, label: foo=bar}\n- {role: service, label: foo=bar}",
      `${P}.selectors[0].role`,
      "endpoints role supports only pod, service, endpoints selectors",
    ],
    [
      "ingress with a node selector",
      "role: ingress\nselectors:\n- {role: node}",
      `${P}.selectors[0].role`,
      "ingress role supports only ingress selectors",
    ],
    [
      "node with a pod selector",
      "role: node\nselectors:\n- {role: pod}",
      `${P}.selectors[0].role`,
      "node role supports only node selectors",
    ],
    [
      "pod with a service selector",
      "role: pod\nselectors:\n- {role: node}\n- {role: service, label: baz=que}",
      `${P}.selectors[1].role`,
      "pod role supports only pod, node selectors",
    ],
    [
      "service with a pod selector",
      "role: service\nselectors:\n- {role: pod}",
      `${P}.selectors[0].role`,
      "service role supports only service selectors",
    ],
    [
      "a selector without role",
      "role: pod\nselectors:\n- {label: a=b}",
      `${P}.selectors[0].role`,
      "pod role supports only pod, node selectors",
    ],
    [
      "unknown field in namespaces",
      "api_server: kubernetes:443\nrole: endpoints\nnamespaces:\n  foo: bar",
      `${P}.namespaces.foo`,
      "field foo not found in type kubernetes.plain",
    ],
    ["unknown top-level field", "role: pod\nfoo: 1", `${P}.foo`, "field foo not found in type kubernetes.plain"],
    [
      "unknown selector field",
      "role: pod\nselectors:\n- {role: pod, lable: a}",
      `${P}.selectors[0].lable`,
      "field lable not found in type kubernetes.SelectorConfig",
    ],
    [
      "unknown attach_metadata field",
      "role: pod\nattach_metadata: {pods: true}",
      `${P}.attach_metadata.pods`,
      "field pods not found in type kubernetes.AttachMetadataConfig",
    ],
    [
      "duplicated selector role",
      "role: endpoints\nselectors:\n- {role: pod, label: foo=bar}\n- {role: pod, label: foo=bar}",
      `${P}.selectors[1].role`,
      "duplicated selector role: pod",
    ],
    [
      "bad field selector",
      "role: endpoints\nselectors:\n- {role: pod, field: metadata.status-Running}",
      `${P}.selectors[0].field`,
      "invalid selector: 'metadata.status-Running'; can't understand 'metadata.status-Running'",
    ],
    [
      "bad label selector",
      "role: pod\nselectors:\n- {role: pod, label: 'a b'}",
      `${P}.selectors[0].label`,
      "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
    ],
    [
      "unparsable api_server",
      "role: pod\napi_server: ':foo'",
      `${P}.api_server`,
      'parse ":foo": missing protocol scheme',
    ],
    [
      "no_proxy without proxy_url",
      "role: pod\napi_server: http://x\nno_proxy: a",
      P,
      "if no_proxy is configured, proxy_url must also be configured",
    ],
    [
      "client cert without key",
      "role: pod\napi_server: http://x\ntls_config: {cert_file: a}",
      `${P}.tls_config`,
      "exactly one of key or key_file must be configured when a client certificate is configured",
    ],
    [
      "reserved header",
      "role: pod\napi_server: http://x\nhttp_headers:\n  authorization: {values: [a]}",
      `${P}.http_headers.authorization`,
      'setting header "Authorization" is not allowed',
    ],
    [
      "selectors not a list",
      "role: pod\nselectors: {}",
      `${P}.selectors`,
      "cannot unmarshal !!map into []kubernetes.SelectorConfig",
    ],
    [
      "names not a list",
      "role: pod\nnamespaces: {names: foo}",
      `${P}.namespaces.names`,
      // Go's message quotes the value (`foo`); ours does not, since a misplaced value may be a secret.
      "cannot unmarshal !!str into []string; write a list, for example [a, b]",
    ],
  ];
  for (const [name, yaml, path, message] of bad) {
    it(`rejects ${name}`, () => {
      const r = check(yaml);
      assert.equal(r.config, undefined);
      assert.equal(r.errors[0]?.path, path);
      assert.equal(r.errors[0]?.message, `${path}: ${message}`);
      assert.equal(r.errors[0]?.code, "config_invalid");
    });
  }

  it("lists every problem, Prometheus's first one first", () => {
    assert.deepEqual(
      messages("role: pod\nkubeconfig_file: k\napi_server: http://x\nnamespaces: {own_namespace: true}"),
      [
        `${P}.kubeconfig_file: cannot use 'kubeconfig_file' and 'api_server' simultaneously`,
        `${P}.namespaces.own_namespace: cannot use 'api_server' and 'namespaces.own_namespace' simultaneously`,
        `${P}.namespaces.own_namespace: cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously`,
      ],
    );
  });

  it("returns the typed config", () => {
    const r = check(
      "role: endpoints\napi_server: https://k8s:6443\nnamespaces: {names: [a, b]}\nselectors:\n- {role: pod, label: app=web}\nattach_metadata: {node: true}\ntls_config: {insecure_skip_verify: true}",
    );
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.config, {
      role: "endpoints",
      apiServer: "https://k8s:6443",
      kubeconfigFile: "",
      namespaces: { ownNamespace: false, names: ["a", "b"] },
      selectors: [{ role: "pod", label: "app=web", field: "" }],
      attachMetadata: { node: true, namespace: false, deployment: false, job: false, cronjob: false },
      httpClient: { tls_config: { insecure_skip_verify: true } },
      customHttpClient: true,
    });
    assert.deepEqual(selectorFor(r.config!, "pod"), { label: "app=web", field: "" });
    assert.deepEqual(selectorFor(r.config!, "service"), { label: "", field: "" });
    assert.deepEqual(namespacesToWatch(r.config!), ["a", "b"]);
  });

  it("watches all namespaces unless some are named or the own one is asked for", () => {
    const cfg = (yaml: string) => check(yaml).config!;
    assert.deepEqual(namespacesToWatch(cfg("role: pod")), [""]);
    assert.deepEqual(namespacesToWatch(cfg("role: pod\nnamespaces: {own_namespace: true}"), "monitoring"), [
      "monitoring",
    ]);
    assert.deepEqual(namespacesToWatch(cfg("role: pod\nnamespaces: {own_namespace: true, names: [a]}"), "mon"), [
      "a",
      "mon",
    ]);
    assert.deepEqual(namespacesToWatch(cfg("role: pod\nnamespaces: {own_namespace: true}")), []);
  });

  it("refuses an entry that is not a mapping", () => {
    assert.equal(
      parseKubernetesSdConfig("pod", P).errors[0]?.message,
      `${P}: cannot unmarshal !!str into kubernetes.SDConfig`,
    );
  });
});

describe("goUrlParseError", () => {
  const cases: [string, string | undefined][] = [
    ["https://k8s:6443", undefined],
    ["kubernetes:443", undefined],
    ["", undefined],
    ["http://[::1]:80/x", undefined],
    [":foo", 'parse ":foo": missing protocol scheme'],
    ["http://[::1", `parse "http://[::1": missing ']' in host`],
    ["http://a b", 'parse "http://a b": invalid character " " in host name'],
    ["http://x:abc", 'parse "http://x:abc": invalid port ":abc" after host'],
    ["http://a:1:2", 'parse "http://a:1:2": invalid port ":1:2" after host'],
    ["http://[1.2.3.4]", 'parse "http://[1.2.3.4]": invalid IP-literal'],
    ["http://x/%zz", 'parse "http://x/%zz": invalid URL escape "%zz"'],
    ["http://%41b", 'parse "http://%41b": invalid URL escape "%41"'],
    ["a/b:c", undefined],
    ["a:b/c", undefined],
    ["1a:b", 'parse "1a:b": first path segment in URL cannot contain colon'],
    ["http://x\x01#f", 'parse "http://x\\x01": net/url: invalid control character in URL'],
    ["http://x#%zz", 'parse "http://x#%zz": invalid URL escape "%zz"'],
  ];
  for (const [url, want] of cases) it(JSON.stringify(url), () => assert.equal(goUrlParseError(url), want));
});
