"""The helpdesk domain: tickets, priorities, the SLA calendar and clocks."""
