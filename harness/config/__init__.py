"""What the user declares, read and checked: YAML sections, units, targets, the model
manifest (with its deployment-config form and sweep specs). Nothing here runs anything."""
