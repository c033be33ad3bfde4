#!/bin/sh
# The rustfs-init service of docker-compose.yml (aws-cli): makes the `photos` bucket,
# sends its put and delete notifications to bucketlens' webhook target (configured on
# the rustfs service as `bucketlens`), and uploads the example photos. Idempotent.
set -eu
aws s3api head-bucket --bucket photos 2>/dev/null || aws s3api create-bucket --bucket photos
aws s3api put-bucket-notification-configuration --bucket photos --notification-configuration '{
  "QueueConfigurations": [{
    "Id": "bucketlens",
    "QueueArn": "arn:rustfs:sqs:us-east-1:bucketlens:webhook",
    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
  }]
}'
aws s3 cp --recursive /examples s3://photos/ --exclude "*" --include "*.jpg" --include "*.png"
