package events

import (
	"encoding/json"
	"errors"
	"mime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hodei/hodei-autoscaler/internal/domain"
)

// Binary-mode CloudEvents (the CloudEvents NATS binding, as
// github.com/cloudevents/sdk-go's JetStream binding sends them): every
// attribute is a "ce-" header, the body is the data alone.
const (
	binaryPrefix = "ce-"
	// maxExtensions and maxExtensionBytes bound what an event may carry
	// onto the decisions it causes.
	maxExtensions     = 16
	maxExtensionBytes = 512
)

// binaryAttrs are the context attributes the decoder reads; every other
// ce- header is an extension.
var binaryAttrs = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"datacontenttype": true, "dataschema": true, "subject": true,
}

// IsBinary reports whether a message's headers carry a binary-mode
// CloudEvent (any ce- header).
func IsBinary(h nats.Header) bool {
	for k := range h {
		if len(k) > len(binaryPrefix) && strings.EqualFold(k[:len(binaryPrefix)], binaryPrefix) {
			return true
		}
	}
	return false
}

// DecodeMsg decodes a job message in either CloudEvents mode: binary when
// its headers carry ce- attributes, structured otherwise (Decode).
func (d Decoder) DecodeMsg(subject string, h nats.Header, payload []byte) (domain.JobEvent, error) {
	if len(h) == 0 || !IsBinary(h) {
		return d.Decode(subject, payload)
	}
	return d.decodeBinary(subject, h, payload)
}

func (d Decoder) decodeBinary(subject string, h nats.Header, payload []byte) (domain.JobEvent, error) {
	pool, kind, err := d.check(subject, payload)
	if err != nil {
		return domain.JobEvent{}, err
	}
	var env envelope
	var contentType string
	var ext map[string]string
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		if lk == "content-type" {
			if contentType == "" {
				contentType = vs[0]
			}
			continue
		}
		name, ok := strings.CutPrefix(lk, binaryPrefix)
		if !ok || name == "" {
			continue
		}
		v := vs[0]
		switch name {
		case "specversion":
			env.SpecVersion = v
		case "id":
			env.ID = v
		case "source":
			env.Source = v
		case "type":
			env.Type = v
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "header ce-time %q is not an RFC 3339 time", v)
			}
			env.Time = &t
		case "datacontenttype":
			contentType = v
		default:
			if binaryAttrs[name] {
				continue
			}
			if len(ext) >= maxExtensions {
				continue
			}
			if ext == nil {
				ext = map[string]string{}
			}
			ext[name] = bounded(v)
		}
	}
	switch env.SpecVersion {
	case "1.0":
	case "":
		return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "binary-mode CloudEvent (ce- headers) without a ce-specversion header")
	default:
		return domain.JobEvent{}, invalid(domain.ReasonUnsupportedSpec, "header ce-specversion %q is not 1.0", env.SpecVersion)
	}
	if contentType != "" && !jsonContent(contentType) {
		return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "datacontenttype %q is not JSON", contentType)
	}
	if len(payload) > 0 {
		if err := domain.CheckJSONText(payload); err != nil {
			return domain.JobEvent{}, err
		}
		if err := json.Unmarshal(payload, &env.Data); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return domain.JobEvent{}, invalid(domain.ReasonBadEnvelope, "data field %q has the wrong type: %v", ute.Field, err)
			}
			return domain.JobEvent{}, invalid(domain.ReasonNotJSON, "data is not JSON: %v", err)
		}
	}
	ev, err := d.validate(pool, kind, &env)
	if err != nil {
		return domain.JobEvent{}, err
	}
	ev.Extensions = ext
	return ev, nil
}

// jsonContent reports whether a media type is JSON (application/json,
// text/json or any +json suffix).
func jsonContent(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// bounded cuts an extension value to maxExtensionBytes.
func bounded(v string) string {
	if len(v) <= maxExtensionBytes {
		return v
	}
	cut := maxExtensionBytes
	for cut > 0 && (v[cut]&0xC0) == 0x80 {
		cut--
	}
	return v[:cut]
}
