#!/usr/bin/env node
// The CDK app: one PMS stack, configured from cdk.json's context (or `-c key=value`).
import * as cdk from "aws-cdk-lib";
import { PmsStack } from "../lib/pms-stack";

const app = new cdk.App();
const ctx = (key: string): string => String(app.node.tryGetContext(key) ?? "");
new PmsStack(app, "Pms", {
  // A fixed account and region: `cdk synth` needs no AWS credentials (cdklocal: 000000000000).
  env: { account: ctx("account"), region: ctx("region") },
  image: ctx("image"),
  kafkaBootstrapServers: ctx("kafkaBootstrapServers"),
  kafkaSecurityProtocol: ctx("kafkaSecurityProtocol") || "ssl",
  keyEncryptionKeySecretName: ctx("keyEncryptionKeySecretName"),
  certificateArn: ctx("certificateArn"),
});
