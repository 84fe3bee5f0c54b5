package hodeijobs

import (
	"encoding/json"
	"fmt"
	"time"
)

// Encode writes a message as Hodei's server publishes it
// (NatsMessageEnvelope::from_domain_event): the variant, externally
// tagged, serialized as the payload string. Tests and benchmarks use it
// to play Hodei.
func Encode(variant string, fields any, correlationID string, created time.Time) ([]byte, error) {
	payload, err := json.Marshal(map[string]any{variant: fields})
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", variant, err)
	}
	env := struct {
		Payload       string    `json:"payload"`
		EventType     string    `json:"event_type"`
		CorrelationID *string   `json:"correlation_id"`
		CreatedAt     time.Time `json:"created_at"`
	}{Payload: string(payload), EventType: variant, CreatedAt: created.UTC()}
	if correlationID != "" {
		env.CorrelationID = &correlationID
	}
	return json.Marshal(env)
}
