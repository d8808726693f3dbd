package onvif

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Documents in the shapes cameras send them (reconstructed from vendor
// captures: namespace prefixes, attribute order and extra elements vary).
var (
	// Hikvision: CellMotionDetector with the three Source items.
	docHikvision = `<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">
<tt:Event>
<wsnt:NotificationMessage xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">
<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
<wsnt:Message>
<tt:Message UtcTime="2026-11-28T08:00:05Z" PropertyOperation="Changed">
<tt:Source>
<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/>
<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>
<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/>
</tt:Source>
<tt:Data>
<tt:SimpleItem Name="IsMotion" Value="true"/>
</tt:Data>
</tt:Message>
</wsnt:Message>
</wsnt:NotificationMessage>
</tt:Event>
</tt:MetadataStream>`

	// Axis: VideoSource/MotionAlarm with State 1/0, ProducerReference,
	// microsecond time, default-namespace-free prefixes declared on the root.
	docAxis = `<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:tnsaxis="http://www.axis.com/2009/event/topics"><tt:Event><wsnt:NotificationMessage><wsnt:Topic Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:ProducerReference><wsa5:Address xmlns:wsa5="http://www.w3.org/2005/08/addressing">uri://5fa4a1c5-6b8e-4f39-b5a4-fd58f5f7a6a1/ProducerReference</wsa5:Address></wsnt:ProducerReference><wsnt:Message><tt:Message UtcTime="2026-11-28T08:00:05.123456Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Source" Value="0"></tt:SimpleItem></tt:Source><tt:Key></tt:Key><tt:Data><tt:SimpleItem Name="State" Value="0"></tt:SimpleItem></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>`

	// Dahua: other prefixes (ns0 for tt), a GB2312 declaration, a local
	// time with offset, an Initialized message, a VideoAnalytics frame with
	// MotionInCells in the same document.
	docDahua = `<?xml version="1.0" encoding="GB2312"?>
<ns0:MetadataStream xmlns:ns0="http://www.onvif.org/ver10/schema" xmlns:ns1="http://docs.oasis-open.org/wsn/b-2" xmlns:tns1="http://www.onvif.org/ver10/topics">
  <ns0:VideoAnalytics>
    <ns0:Frame UtcTime="2026-11-28T16:00:05.500+08:00">
      <ns0:Extension><ns0:MotionInCells Columns="4" Rows="2" Cells="` + base64.StdEncoding.EncodeToString(PackBits([]byte{0xF0})) + `"/></ns0:Extension>
    </ns0:Frame>
  </ns0:VideoAnalytics>
  <ns0:Event>
    <ns1:NotificationMessage>
      <ns1:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</ns1:Topic>
      <ns1:Message>
        <ns0:Message UtcTime="2026-11-28T16:00:05.500+08:00" PropertyOperation="Initialized">
          <ns0:Source>
            <ns0:SimpleItem Name="VideoSourceConfigurationToken" Value="00000"/>
            <ns0:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="00000"/>
            <ns0:SimpleItem Name="Rule" Value="00000"/>
          </ns0:Source>
          <ns0:Data><ns0:SimpleItem Name="IsMotion" Value="TRUE"/></ns0:Data>
        </ns0:Message>
      </ns1:Message>
    </ns1:NotificationMessage>
  </ns0:Event>
</ns0:MetadataStream>`

	// Undeclared prefixes (some firmwares forget xmlns), two notifications
	// in one event, the second with a Cells data item and no time zone.
	docSloppy = `<tt:MetadataStream><tt:Event>
<wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/tns1:CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-28T08:00:07" PropertyOperation="changed"><tt:Source><tt:SimpleItem Name="Rule" Value="R1"/></tt:Source><tt:Data><tt:SimpleItem Name="IsMotion" Value="false"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
<wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-28T08:00:08Z"><tt:Source><tt:SimpleItem Name="Rule" Value="R2"/></tt:Source><tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/><tt:SimpleItem Name="MotionInCells" Value="` + base64.StdEncoding.EncodeToString(PackBits([]byte{0, 0, 0, 0, 0x81})) + `"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
</tt:Event></tt:MetadataStream>`

	// A frame-only document (the once-a-second heartbeat) and a tampering
	// event (not motion).
	docFrameOnly = `<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:VideoAnalytics><tt:Frame UtcTime="2026-11-28T08:00:09Z"/></tt:VideoAnalytics></tt:MetadataStream>`
	docTamper    = `<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><tt:Event><wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/TamperDetector/Tamper</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-28T08:00:10Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="vs1"/></tt:Source><tt:Data><tt:SimpleItem Name="IsTamper" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>`
)

func TestParse(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	type want struct {
		time                  time.Time
		topic, rule, source   string
		op                    Operation
		active, state, motion bool
		cells                 string // active cells as "col,row;..."
	}
	for _, tc := range []struct {
		name string
		doc  string
		want []want
	}{
		{"hikvision", docHikvision, []want{{ts("2026-11-28T08:00:05Z"), "RuleEngine/CellMotionDetector/Motion", "MyMotionDetectorRule", "VideoSourceToken", OpChanged, true, true, true, ""}}},
		{"axis", docAxis, []want{{ts("2026-11-28T08:00:05.123456Z"), "VideoSource/MotionAlarm", "", "0", OpChanged, false, true, true, ""}}},
		{"dahua", docDahua, []want{{ts("2026-11-28T08:00:05.5Z"), "RuleEngine/CellMotionDetector/Motion", "00000", "00000", OpInitialized, true, true, true, "0,0;1,0;2,0;3,0"}}},
		{"sloppy", docSloppy, []want{
			{ts("2026-11-28T08:00:07Z"), "RuleEngine/CellMotionDetector/Motion", "R1", "", OpChanged, false, true, true, ""},
			{ts("2026-11-28T08:00:08Z"), "RuleEngine/CellMotionDetector/Motion", "R2", "", "", true, true, true, "raw"},
		}},
		{"frame only", docFrameOnly, nil},
		{"tamper", docTamper, []want{{ts("2026-11-28T08:00:10Z"), "RuleEngine/TamperDetector/Tamper", "", "vs1", OpChanged, false, false, false, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Events) != len(tc.want) {
				t.Fatalf("%d events, want %d: %+v", len(d.Events), len(tc.want), d.Events)
			}
			for i, w := range tc.want {
				e := d.Events[i]
				if !e.Time.Equal(w.time) || e.Topic != w.topic || e.Rule != w.rule || e.Source != w.source ||
					e.Operation != w.op || e.Active != w.active || e.HasState != w.state || e.IsMotion() != w.motion {
					t.Errorf("event %d = %+v (motion %v), want %+v", i, e, e.IsMotion(), w)
				}
				switch w.cells {
				case "":
					if e.Cells != nil {
						t.Errorf("event %d: unexpected cells %+v", i, e.Cells)
					}
				case "raw": // no layout: the decoded bytes as they are
					if e.Cells == nil || !bytes.Equal(e.Cells.Bits, []byte{0, 0, 0, 0, 0x81}) {
						t.Errorf("event %d: cells %+v", i, e.Cells)
					}
				default:
					var got []string
					for r := 0; e.Cells != nil && r < e.Cells.Rows; r++ {
						for c := 0; c < e.Cells.Columns; c++ {
							if e.Cells.Active(c, r) {
								got = append(got, strings.Join([]string{itoa(c), itoa(r)}, ","))
							}
						}
					}
					if strings.Join(got, ";") != w.cells {
						t.Errorf("event %d: active cells %q, want %q", i, strings.Join(got, ";"), w.cells)
					}
				}
			}
		})
	}
	d, _ := Parse([]byte(docFrameOnly))
	if !d.FrameTime.Equal(ts("2026-11-28T08:00:09Z")) {
		t.Errorf("frame time %v", d.FrameTime)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want error
	}{
		{"empty", "", ErrInvalid},
		{"not xml", "\x00\x01garbage", ErrInvalid},
		{"truncated", docHikvision[:len(docHikvision)/2], ErrInvalid},
		{"other root", `<html><body/></html>`, ErrInvalid},
		{"entity", `<!DOCTYPE x [<!ENTITY a "aaaa">]><tt:MetadataStream>&a;</tt:MetadataStream>`, ErrInvalid},
		{"too large", "<tt:MetadataStream>" + strings.Repeat(" ", MaxDocumentSize) + "</tt:MetadataStream>", ErrTooLarge},
		{"too many elements", "<tt:MetadataStream>" + strings.Repeat("<a/>", MaxElements) + "</tt:MetadataStream>", ErrTooLarge},
		{"too deep", "<tt:MetadataStream>" + strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth) + "</tt:MetadataStream>", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.doc)); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseCapsEvents(t *testing.T) {
	one := docHikvision[strings.Index(docHikvision, "<wsnt:NotificationMessage"):strings.Index(docHikvision, "</tt:Event>")]
	doc := `<tt:MetadataStream><tt:Event>` + strings.Repeat(one, MaxEvents+5) + `</tt:Event></tt:MetadataStream>`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != MaxEvents {
		t.Fatalf("%d events, want %d", len(d.Events), MaxEvents)
	}
}

func TestPackBits(t *testing.T) {
	for _, in := range [][]byte{
		{}, {1}, {0, 0}, {0, 0, 0}, {1, 2, 3, 3, 3, 3, 4}, bytes.Repeat([]byte{7}, 300),
		append(bytes.Repeat([]byte{1, 2}, 100), bytes.Repeat([]byte{9}, 5)...),
	} {
		out, ok := unpackBits(PackBits(in), len(in))
		if !ok || !bytes.Equal(out, in) {
			t.Errorf("round trip of %x gave %x (ok %v)", in, out, ok)
		}
	}
	// The TIFF specification's example.
	packed := []byte{0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7, 0xAA}
	want := []byte{0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
	if out, ok := unpackBits(packed, 100); !ok || !bytes.Equal(out, want) {
		t.Errorf("TIFF example: %x ok=%v", out, ok)
	}
	if _, ok := unpackBits(packed, 10); ok {
		t.Error("limit not enforced")
	}
}
