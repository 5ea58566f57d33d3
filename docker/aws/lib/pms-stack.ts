// PMS on AWS ECS Fargate: a VPC, RDS PostgreSQL, a Kafka endpoint (an Amazon MSK cluster, or an
// existing cluster's bootstrap servers), one Fargate service per role from the one image, and an
// internet-facing ALB to the gateway only. Secrets come from Secrets Manager as ECS secrets, never
// as plain environment. The same settings as docker/compose.yml (README "Deploy").
import * as cdk from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as logs from "aws-cdk-lib/aws-logs";
import * as rds from "aws-cdk-lib/aws-rds";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as servicediscovery from "aws-cdk-lib/aws-servicediscovery";
import { Construct } from "constructs";
import { KafkaEndpoint } from "./kafka";

/** What a deployer chooses (cdk.json context, `-c key=value`). */
export interface PmsStackProps extends cdk.StackProps {
  /** The pms-server image (docker/Dockerfile), e.g. an ECR repository URI with a tag. */
  readonly image: string;
  /** An existing Kafka cluster's bootstrap servers; empty: the stack creates an MSK cluster. */
  readonly kafkaBootstrapServers: string;
  /** Kafka security protocol for an existing cluster (MSK created here: `ssl`). */
  readonly kafkaSecurityProtocol: string;
  /** Name of the Secrets Manager secret holding the auth key-encryption key (created beforehand:
   * base64 of 32 random bytes, `openssl rand -base64 32`, which Secrets Manager cannot generate). */
  readonly keyEncryptionKeySecretName: string;
  /** ACM certificate for HTTPS on the ALB; empty: HTTP on port 80 (a test setup only). */
  readonly certificateArn: string;
}

/** One PMS role: its ports, size, replicas and the settings only it needs. */
interface Role {
  readonly name: "auth" | "billing" | "patient" | "analytics" | "gateway";
  readonly port: number;
  readonly grpcPort?: number;
  readonly desiredCount: number;
  readonly autoscale?: { min: number; max: number };
}

// Ports and URLs as in docker/compose.yml; the services find each other by Cloud Map DNS names
// (<role>.pms.internal).
const ROLES: Role[] = [
  // One auth replica: login throttling is per process (README "Deploy").
  { name: "auth", port: 4005, desiredCount: 1 },
  { name: "billing", port: 4001, grpcPort: 9001, desiredCount: 2 },
  { name: "patient", port: 4000, desiredCount: 2, autoscale: { min: 2, max: 8 } },
  { name: "analytics", port: 4002, desiredCount: 2 },
  { name: "gateway", port: 4004, desiredCount: 2, autoscale: { min: 2, max: 10 } },
];
const NAMESPACE = "pms.internal";
const url = (role: string, port: number) => `http://${role}.${NAMESPACE}:${port}`;

export class PmsStack extends cdk.Stack {
  /** The Fargate service of each role. */
  public readonly services: Record<string, ecs.FargateService> = {};

  constructor(scope: Construct, id: string, props: PmsStackProps) {
    super(scope, id, props);

    const vpc = new ec2.Vpc(this, "Vpc", {
      // cdk.json's context names the zones of its fixed account/region: synth makes no AWS call.
      maxAzs: 2,
      natGateways: 1,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "services", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: "data", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
    });

    // One security group per role, so each port is open only to the roles that call it.
    const groups: Record<string, ec2.SecurityGroup> = {};
    for (const role of ROLES) {
      groups[role.name] = new ec2.SecurityGroup(this, `${role.name}Sg`, {
        vpc,
        description: `PMS ${role.name} tasks`,
        allowAllOutbound: true,
      });
    }
    const backends = ROLES.filter((r) => r.name !== "gateway");

    // PostgreSQL: one database, each service its own schema. Not reachable from the internet.
    const dbSg = new ec2.SecurityGroup(this, "DatabaseSg", {
      vpc,
      description: "PMS PostgreSQL",
      allowAllOutbound: false,
    });
    const database = new rds.DatabaseInstance(this, "Database", {
      // PostgreSQL 15 (as compose): its default parameters accept connections without TLS,
      // which pms-server's driver is built without (16 and later force TLS by default).
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_15_17 }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [dbSg],
      databaseName: "pms",
      // The password goes into a URL: only characters that need no escaping there.
      credentials: rds.Credentials.fromGeneratedSecret("pms", {
        excludeCharacters: " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^.",
      }),
      multiAz: true,
      storageEncrypted: true,
      allocatedStorage: 20,
      maxAllocatedStorage: 200,
      backupRetention: cdk.Duration.days(7),
      deletionProtection: true,
      removalPolicy: cdk.RemovalPolicy.SNAPSHOT,
      publiclyAccessible: false,
    });
    for (const role of backends) {
      dbSg.addIngressRule(groups[role.name], ec2.Port.tcp(5432), `PostgreSQL from ${role.name}`);
    }
    // PMS_DATABASE__URL as a secret of its own: CloudFormation resolves the generated password
    // into it at deploy time, so it never appears in the template or the task definition.
    const dbSecret = database.secret!; // set: the credentials above are generated
    const databaseUrl = new secretsmanager.Secret(this, "DatabaseUrl", {
      description: "PMS_DATABASE__URL of the PMS services",
      secretStringValue: cdk.SecretValue.unsafePlainText(
        `postgres://pms:${dbSecret.secretValueFromJson("password").unsafeUnwrap()}@` +
          `${database.dbInstanceEndpointAddress}:${database.dbInstanceEndpointPort}/pms`,
      ),
    });

    const kafka = new KafkaEndpoint(this, "Kafka", {
      vpc,
      bootstrapServers: props.kafkaBootstrapServers,
      securityProtocol: props.kafkaSecurityProtocol,
      clients: backends.map((r) => groups[r.name]),
    });

    const adminPassword = new secretsmanager.Secret(this, "AdminPassword", {
      description: "PMS first-start admin password (PMS_ADMIN_PASSWORD)",
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
    });
    const metricsToken = new secretsmanager.Secret(this, "MetricsToken", {
      description: "Bearer token for the gateway's /metrics (PMS_HTTP__METRICS_TOKEN)",
      generateSecretString: { passwordLength: 40, excludePunctuation: true },
    });
    const keyEncryptionKey = secretsmanager.Secret.fromSecretNameV2(
      this,
      "KeyEncryptionKey",
      props.keyEncryptionKeySecretName,
    );

    const cluster = new ecs.Cluster(this, "Cluster", {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: { name: NAMESPACE, vpc, type: servicediscovery.NamespaceType.DNS_PRIVATE },
    });

    const shared: Record<string, string> = {
      PMS_LOG__FORMAT: "json",
      PMS_LOG__LEVEL: "info",
      PMS_AUTH__URL: url("auth", 4005),
      // Believe X-Forwarded-For only from the VPC (the ALB, the gateway).
      PMS_HTTP__TRUSTED_PROXIES: `127.0.0.0/8,::1/128,${vpc.vpcCidrBlock}`,
    };
    const perRole: Record<Role["name"], Record<string, string>> = {
      auth: { PMS_ADMIN_EMAIL: "admin@pms.local" },
      billing: { PMS_BILLING__GRPC_PORT: "9001" },
      patient: { PMS_PATIENT__BILLING_GRPC_URL: url("billing", 9001) },
      analytics: {},
      gateway: {
        PMS_GATEWAY__PATIENT_URL: url("patient", 4000),
        PMS_GATEWAY__BILLING_URL: url("billing", 4001),
        PMS_GATEWAY__ANALYTICS_URL: url("analytics", 4002),
      },
    };

    for (const role of ROLES) {
      const upper = role.name.toUpperCase();
      const task = new ecs.FargateTaskDefinition(this, `${role.name}Task`, {
        cpu: role.name === "auth" ? 1024 : 512,
        // Argon2 password hashing: auth gets the larger task.
        memoryLimitMiB: role.name === "auth" ? 2048 : 1024,
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64 },
      });
      const secrets: Record<string, ecs.Secret> = {};
      if (role.name === "gateway") {
        secrets.PMS_HTTP__METRICS_TOKEN = ecs.Secret.fromSecretsManager(metricsToken);
      } else {
        secrets.PMS_DATABASE__URL = ecs.Secret.fromSecretsManager(databaseUrl);
        Object.assign(secrets, kafka.secrets);
      }
      if (role.name === "auth") {
        secrets.PMS_ADMIN_PASSWORD = ecs.Secret.fromSecretsManager(adminPassword);
        secrets.PMS_AUTH__KEY_ENCRYPTION_KEY = ecs.Secret.fromSecretsManager(keyEncryptionKey);
      }
      const container = task.addContainer("pms", {
        image: ecs.ContainerImage.fromRegistry(props.image),
        command: [role.name],
        environment: {
          ...shared,
          ...(role.name === "gateway" ? {} : kafka.environment),
          ...perRole[role.name],
          [`PMS_${upper}__BIND`]: "0.0.0.0",
          [`PMS_${upper}__PORT`]: String(role.port),
        },
        secrets,
        portMappings: [
          { containerPort: role.port, name: "http" },
          ...(role.grpcPort ? [{ containerPort: role.grpcPort, name: "grpc" }] : []),
        ],
        // The image has curl; liveness here, readiness through the ALB / Cloud Map health.
        healthCheck: {
          command: ["CMD", "curl", "-fsS", `http://127.0.0.1:${role.port}/health/live`],
          interval: cdk.Duration.seconds(10),
          timeout: cdk.Duration.seconds(3),
          retries: 3,
          startPeriod: cdk.Duration.seconds(60),
        },
        readonlyRootFilesystem: true,
        user: "10001",
        stopTimeout: cdk.Duration.seconds(40),
        logging: ecs.LogDrivers.awsLogs({
          streamPrefix: role.name,
          logGroup: new logs.LogGroup(this, `${role.name}Logs`, {
            retention: logs.RetentionDays.ONE_MONTH,
            removalPolicy: cdk.RemovalPolicy.DESTROY,
          }),
        }),
      });
      // Writable scratch space on the read-only root filesystem: the data dir and /tmp.
      for (const [volume, path] of [
        ["data", "/var/lib/pms"],
        ["tmp", "/tmp"],
      ]) {
        task.addVolume({ name: volume });
        container.addMountPoints({ sourceVolume: volume, containerPath: path, readOnly: false });
      }

      const service = new ecs.FargateService(this, `${role.name}Service`, {
        cluster,
        taskDefinition: task,
        desiredCount: role.desiredCount,
        securityGroups: [groups[role.name]],
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        assignPublicIp: false,
        circuitBreaker: { rollback: true },
        minHealthyPercent: role.desiredCount > 1 ? 50 : 100,
        maxHealthyPercent: 200,
        cloudMapOptions: { name: role.name, dnsRecordType: servicediscovery.DnsRecordType.A },
      });
      if (role.autoscale) {
        const scaling = service.autoScaleTaskCount({
          minCapacity: role.autoscale.min,
          maxCapacity: role.autoscale.max,
        });
        scaling.scaleOnCpuUtilization(`${role.name}Cpu`, { targetUtilizationPercent: 70 });
      }
      this.services[role.name] = service;
    }

    // Who may call whom, as in docker/kubernetes/base/network-policies.yaml.
    const allow = (from: string, to: string, port: number) =>
      groups[to].addIngressRule(groups[from], ec2.Port.tcp(port), `${from} to ${to}`);
    for (const r of backends) allow("gateway", r.name, r.port);
    for (const r of ["patient", "billing", "analytics"]) allow(r, "auth", 4005);
    allow("patient", "billing", 9001);

    // The only internet-facing entry: the ALB, to the gateway.
    const albSg = new ec2.SecurityGroup(this, "AlbSg", { vpc, description: "PMS public load balancer" });
    const alb = new elbv2.ApplicationLoadBalancer(this, "Alb", {
      vpc,
      internetFacing: true,
      securityGroup: albSg,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      dropInvalidHeaderFields: true,
      // The live event stream sends a heartbeat every 15 s; keep idle streams open past it.
      idleTimeout: cdk.Duration.seconds(120),
    });
    const listener = props.certificateArn
      ? alb.addListener("Https", {
          port: 443,
          certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
          sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        })
      : alb.addListener("Http", { port: 80 });
    const gateway = this.services.gateway;
    listener.addTargets("Gateway", {
      port: 4004,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [gateway.loadBalancerTarget({ containerName: "pms", containerPort: 4004 })],
      healthCheck: {
        path: "/health/ready",
        healthyHttpCodes: "200",
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(5),
      },
      deregistrationDelay: cdk.Duration.seconds(30),
    });
    groups.gateway.addIngressRule(albSg, ec2.Port.tcp(4004), "ALB to gateway");

    new cdk.CfnOutput(this, "Url", {
      value: `${props.certificateArn ? "https" : "http"}://${alb.loadBalancerDnsName}`,
      description: "The PMS API (the gateway)",
    });
    new cdk.CfnOutput(this, "AdminPasswordSecret", { value: adminPassword.secretArn });
  }
}
