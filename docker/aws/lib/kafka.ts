// The Kafka endpoint of the PMS services: an existing cluster's bootstrap servers, or an Amazon
// MSK cluster created here (TLS in transit, reachable only from the services' security groups).
import * as cdk from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as msk from "aws-cdk-lib/aws-msk";
import * as cr from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";

export interface KafkaEndpointProps {
  readonly vpc: ec2.IVpc;
  /** Bootstrap servers of an existing cluster; empty: create an MSK cluster. */
  readonly bootstrapServers: string;
  /** Security protocol for an existing cluster (plaintext | ssl | sasl_ssl ...). */
  readonly securityProtocol: string;
  /** Security groups of the services that use Kafka. */
  readonly clients: ec2.ISecurityGroup[];
}

export class KafkaEndpoint extends Construct {
  /** PMS_KAFKA__* settings of the services (not secret). */
  public readonly environment: Record<string, string>;
  /** Secret PMS_KAFKA__* settings (none for TLS without SASL). */
  public readonly secrets: Record<string, ecs.Secret> = {};

  constructor(scope: Construct, id: string, props: KafkaEndpointProps) {
    super(scope, id);
    if (props.bootstrapServers) {
      // SASL: add PMS_KAFKA__SASL_MECHANISM/USERNAME here and PMS_KAFKA__SASL_PASSWORD to
      // `secrets` from a Secrets Manager secret (README "Deploy").
      this.environment = {
        PMS_KAFKA__BROKERS: props.bootstrapServers,
        PMS_KAFKA__SECURITY_PROTOCOL: props.securityProtocol,
      };
      return;
    }
    const sg = new ec2.SecurityGroup(this, "Sg", {
      vpc: props.vpc,
      description: "PMS Kafka (MSK) brokers",
      allowAllOutbound: false,
    });
    for (const client of props.clients) {
      sg.addIngressRule(client, ec2.Port.tcp(9094), "Kafka over TLS from a PMS service");
    }
    const subnets = props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED });
    const cluster = new msk.CfnCluster(this, "Cluster", {
      clusterName: `${cdk.Stack.of(this).stackName}-kafka`,
      kafkaVersion: "3.6.0",
      numberOfBrokerNodes: subnets.subnetIds.length,
      brokerNodeGroupInfo: {
        instanceType: "kafka.t3.small",
        clientSubnets: subnets.subnetIds,
        securityGroups: [sg.securityGroupId],
        storageInfo: { ebsStorageInfo: { volumeSize: 100 } },
      },
      encryptionInfo: { encryptionInTransit: { clientBroker: "TLS", inCluster: true } },
      // Reachable only from the services' security groups; TLS authenticates the brokers.
      clientAuthentication: { unauthenticated: { enabled: true } },
    });
    // MSK does not return its bootstrap servers as a CloudFormation attribute: ask its API.
    const brokers = new cr.AwsCustomResource(this, "BootstrapBrokers", {
      onUpdate: {
        service: "Kafka",
        action: "getBootstrapBrokers",
        parameters: { ClusterArn: cluster.attrArn },
        physicalResourceId: cr.PhysicalResourceId.of(cluster.attrArn),
        outputPaths: ["BootstrapBrokerStringTls"],
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: [cluster.attrArn] }),
      installLatestAwsSdk: false,
    });
    this.environment = {
      PMS_KAFKA__BROKERS: brokers.getResponseField("BootstrapBrokerStringTls"),
      // MSK's certificates chain to Amazon's public CAs: the system trust store verifies them.
      PMS_KAFKA__SECURITY_PROTOCOL: "ssl",
      // Two brokers: topics PMS creates should have PMS_KAFKA__REPLICATION_FACTOR "2" and
      // PMS_KAFKA__MIN_INSYNC_REPLICAS "1" (README "Deploy").
    };
  }
}
