// Assertions on the synthesized template (node's test runner, aws-cdk-lib/assertions): only the
// gateway is reachable from the internet, no secret sits in a plain environment variable, every
// service has health checks, the gateway and patient services scale.
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as cdk from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { PmsStack, PmsStackProps } from "../lib/pms-stack";

const SECRET_SETTINGS = [
  "PMS_DATABASE__URL",
  "PMS_ADMIN_PASSWORD",
  "PMS_AUTH__KEY_ENCRYPTION_KEY",
  "PMS_HTTP__METRICS_TOKEN",
  "PMS_KAFKA__SASL_PASSWORD",
];

function synth(overrides: Partial<PmsStackProps> = {}): Template {
  const app = new cdk.App({
    context: { "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a", "eu-west-1b"] },
  });
  const stack = new PmsStack(app, "Pms", {
    env: { account: "123456789012", region: "eu-west-1" },
    image: "registry.example.org/pms-server:test",
    kafkaBootstrapServers: "",
    kafkaSecurityProtocol: "ssl",
    keyEncryptionKeySecretName: "pms/key-encryption-key",
    certificateArn: "",
    ...overrides,
  });
  return Template.fromStack(stack);
}

type Container = {
  Command: string[];
  Environment?: { Name: string; Value: unknown }[];
  Secrets?: { Name: string; ValueFrom: unknown }[];
  HealthCheck?: { Command: string[] };
  ReadonlyRootFilesystem?: boolean;
  User?: string;
};

function containers(template: Template): Container[] {
  return Object.values(template.findResources("AWS::ECS::TaskDefinition")).flatMap(
    (t) => t.Properties.ContainerDefinitions as Container[],
  );
}

// The template `cdk synth` wrote (the one cfn-lint checked); variants are synthesized here.
const template = Template.fromJSON(JSON.parse(readFileSync("cdk.out/Pms.template.json", "utf8")));

test("one Fargate service per role, from the one image, non-root on a read-only root", () => {
  const roles = containers(template).map((c) => c.Command[0]).sort();
  assert.deepEqual(roles, ["analytics", "auth", "billing", "gateway", "patient"]);
  template.resourceCountIs("AWS::ECS::Service", 5);
  for (const c of containers(template)) {
    assert.equal(c.ReadonlyRootFilesystem, true, c.Command[0]);
    assert.equal(c.User, "10001", c.Command[0]);
  }
});

test("only the gateway's ALB is internet-facing", () => {
  template.resourceCountIs("AWS::ElasticLoadBalancingV2::LoadBalancer", 1);
  template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
    Scheme: "internet-facing",
  });
  const services = Object.values(template.findResources("AWS::ECS::Service"));
  const balanced = services.filter((s) => s.Properties.LoadBalancers);
  assert.equal(balanced.length, 1, "one service behind the load balancer");
  assert.equal(balanced[0].Properties.LoadBalancers[0].ContainerPort, 4004, "the gateway");
  for (const s of services) {
    assert.equal(s.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, "DISABLED");
  }
  template.hasResourceProperties("AWS::RDS::DBInstance", {
    PubliclyAccessible: false,
    StorageEncrypted: true,
  });
  // The internet (0.0.0.0/0) reaches the ALB's security group only.
  const groups = template.findResources("AWS::EC2::SecurityGroup");
  const open = Object.entries(groups).filter(([, g]) =>
    (g.Properties.SecurityGroupIngress ?? []).some((r: { CidrIp?: string }) => r.CidrIp === "0.0.0.0/0"),
  );
  assert.deepEqual(
    open.map(([, g]) => g.Properties.GroupDescription),
    ["PMS public load balancer"],
  );
});

test("no secret in a plain environment variable; each comes from Secrets Manager", () => {
  for (const c of containers(template)) {
    const role = c.Command[0];
    for (const e of c.Environment ?? []) {
      assert.ok(!SECRET_SETTINGS.includes(e.Name), `${role}: ${e.Name} in plain environment`);
      assert.ok(!/resolve:secretsmanager|password/i.test(JSON.stringify(e.Value)), `${role}: ${e.Name}`);
    }
    const secrets = (c.Secrets ?? []).map((s) => s.Name).sort();
    const expected: Record<string, string[]> = {
      auth: ["PMS_ADMIN_PASSWORD", "PMS_AUTH__KEY_ENCRYPTION_KEY", "PMS_DATABASE__URL"],
      billing: ["PMS_DATABASE__URL"],
      patient: ["PMS_DATABASE__URL"],
      analytics: ["PMS_DATABASE__URL"],
      gateway: ["PMS_HTTP__METRICS_TOKEN"],
    };
    assert.deepEqual(secrets, expected[role], role);
  }
  // The database URL secret is assembled by CloudFormation from the generated password.
  template.hasResourceProperties("AWS::SecretsManager::Secret", {
    Description: "PMS_DATABASE__URL of the PMS services",
    SecretString: Match.anyValue(),
  });
});

test("health checks: the ALB on readiness, every container on liveness", () => {
  template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
    HealthCheckPath: "/health/ready",
    Port: 4004,
  });
  for (const c of containers(template)) {
    const command = (c.HealthCheck?.Command ?? []).join(" ");
    assert.match(command, /\/health\/live$/, c.Command[0]);
  }
});

test("the gateway and patient services autoscale", () => {
  template.resourceCountIs("AWS::ApplicationAutoScaling::ScalableTarget", 2);
  template.resourceCountIs("AWS::ApplicationAutoScaling::ScalingPolicy", 2);
  template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", {
    MinCapacity: 2,
    MaxCapacity: 10,
  });
});

test("an existing Kafka cluster replaces MSK", () => {
  template.resourceCountIs("AWS::MSK::Cluster", 1);
  const existing = synth({ kafkaBootstrapServers: "b-1.example:9096", kafkaSecurityProtocol: "sasl_ssl" });
  existing.resourceCountIs("AWS::MSK::Cluster", 0);
  const env = containers(existing)
    .filter((c) => c.Command[0] === "billing")
    .flatMap((c) => c.Environment ?? []);
  assert.deepEqual(
    env.filter((e) => e.Name.startsWith("PMS_KAFKA__")).sort((a, b) => a.Name.localeCompare(b.Name)),
    [
      { Name: "PMS_KAFKA__BROKERS", Value: "b-1.example:9096" },
      { Name: "PMS_KAFKA__SECURITY_PROTOCOL", Value: "sasl_ssl" },
    ],
  );
});
