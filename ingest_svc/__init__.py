"""StepIngest: validates step reports and appends them to Kafka."""
