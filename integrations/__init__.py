"""Integrations with the MSP's other tools: outbound webhooks, monitoring alerts, the PSA bridge."""
