package tensorboard

// The protobuf messages of event files, encoded and decoded field by field. Field numbers from the
// descriptors in the tensorboard wheel (see the package doc):
//
//	tensorboard.Event:                  wall_time 1 (double), step 2 (int64), file_version 3
//	                                    (string), summary 5 (Summary)
//	tensorboard.Summary:                value 1 (repeated Value)
//	tensorboard.Summary.Value:          tag 1 (string), simple_value 2 (float), tensor 8
//	                                    (TensorProto), metadata 9 (SummaryMetadata)
//	tensorboard.SummaryMetadata:        plugin_data 1 (PluginData)
//	tensorboard.SummaryMetadata.PluginData: plugin_name 1 (string), content 2 (bytes)
//	tensorboard.TensorProto:            dtype 1 (enum, DT_FLOAT = 1), tensor_shape 2
//	tensorboard.TensorShapeProto:       dim 2 (repeated Dim); Dim: size 1 (int64)
//	tensorboard.hparams.HParamsPluginData: version 1 (int32), session_start_info 3
//	tensorboard.hparams.SessionStartInfo: hparams 1 (map<string, google.protobuf.Value>),
//	                                    group_name 4 (string), start_time_secs 5 (double)
//	google.protobuf.Value:              number_value 2 (double), string_value 3, bool_value 4

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	eventWallTime    = 1
	eventStep        = 2
	eventFileVersion = 3
	eventSummary     = 5

	summaryValue = 1

	valueTag         = 1
	valueSimpleValue = 2
	valueTensor      = 8
	valueMetadata    = 9

	metadataPluginData = 1
	pluginName         = 1
	pluginContent      = 2

	tensorDtype   = 1
	tensorShape   = 2
	shapeDim      = 2
	dtFloat       = 1
	hparamsPlugin = "hparams"

	hparamsVersion          = 1
	hparamsSessionStartInfo = 3
	startInfoHParams        = 1
	startInfoGroupName      = 4
	startInfoStartTime      = 5
	mapKey                  = 1
	mapValue                = 2
	pbValueNumber           = 2
	pbValueString           = 3
	pbValueBool             = 4
)

func appendDouble(b []byte, num protowire.Number, x float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(x))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func eventHeader(wall float64, step int64) []byte {
	b := appendDouble(nil, eventWallTime, wall)
	if step != 0 {
		b = appendVarint(b, eventStep, uint64(step))
	}
	return b
}

func fileVersionEvent(wall float64) []byte {
	return appendString(eventHeader(wall, 0), eventFileVersion, FileVersion)
}

func eventScalar(wall float64, step int64, tag string, v float32) []byte {
	val := appendString(nil, valueTag, tag)
	val = protowire.AppendTag(val, valueSimpleValue, protowire.Fixed32Type)
	val = protowire.AppendFixed32(val, math.Float32bits(v))
	return appendMessage(eventHeader(wall, step), eventSummary, appendMessage(nil, summaryValue, val))
}

// hparam is one hyperparameter: exactly one of its values is used, by kind.
type hparam struct {
	name string
	kind protowire.Number // pbValueNumber, pbValueString or pbValueBool
	num  float64
	str  string
	bool bool
}

func hparamValue(v any) (hparam, error) {
	switch x := v.(type) {
	case bool:
		return hparam{kind: pbValueBool, bool: x}, nil
	case string:
		return hparam{kind: pbValueString, str: x}, nil
	}
	rv := reflect.ValueOf(v)
	var f float64
	switch {
	case rv.CanInt():
		f = float64(rv.Int())
	case rv.CanUint():
		f = float64(rv.Uint())
	case rv.CanFloat():
		f = rv.Float()
	default:
		return hparam{}, fmt.Errorf("%v is a %T, not a bool, string or number", v, v)
	}
	if !isFinite(f) {
		return hparam{}, fmt.Errorf("%v is not a finite number", f)
	}
	return hparam{kind: pbValueNumber, num: f}, nil
}

// derivedGroupName is the SHA-256 of the hyperparameters as sorted JSON, a name that is the same
// for the same values (tensorboard derives its default the same way from Python's JSON).
func derivedGroupName(values []hparam) string {
	h := sha256.New()
	h.Write([]byte("{"))
	for i, v := range values {
		if i > 0 {
			h.Write([]byte(","))
		}
		key, _ := json.Marshal(v.name)
		var val []byte
		switch v.kind {
		case pbValueBool:
			val, _ = json.Marshal(v.bool)
		case pbValueString:
			val, _ = json.Marshal(v.str)
		default:
			val, _ = json.Marshal(v.num)
		}
		h.Write(key)
		h.Write([]byte(":"))
		h.Write(val)
	}
	h.Write([]byte("}"))
	return hex.EncodeToString(h.Sum(nil))
}

func eventHParams(wall float64, values []hparam, groupName string, start float64) []byte {
	var info []byte
	for _, v := range values {
		var val []byte
		switch v.kind {
		case pbValueBool:
			b := uint64(0)
			if v.bool {
				b = 1
			}
			val = appendVarint(nil, pbValueBool, b)
		case pbValueString:
			val = appendString(nil, pbValueString, v.str)
		default:
			val = appendDouble(nil, pbValueNumber, v.num)
		}
		entry := appendString(nil, mapKey, v.name)
		entry = appendMessage(entry, mapValue, val)
		info = appendMessage(info, startInfoHParams, entry)
	}
	info = appendString(info, startInfoGroupName, groupName)
	info = appendDouble(info, startInfoStartTime, start)
	// HParamsPluginData: version 0 (the plugin's PLUGIN_DATA_VERSION; a zero is not written).
	content := appendMessage(nil, hparamsSessionStartInfo, info)
	plugin := appendString(nil, pluginName, hparamsPlugin)
	plugin = appendMessage(plugin, pluginContent, content)
	metadata := appendMessage(nil, metadataPluginData, plugin)
	// The empty float tensor that tensorboard's hparams summaries carry (metadata.NULL_TENSOR):
	// dtype DT_FLOAT, shape [0].
	tensor := appendVarint(nil, tensorDtype, dtFloat)
	tensor = appendMessage(tensor, tensorShape, appendMessage(nil, shapeDim, nil))
	val := appendString(nil, valueTag, HParamsTag)
	val = appendMessage(val, valueTensor, tensor)
	val = appendMessage(val, valueMetadata, metadata)
	return appendMessage(eventHeader(wall, 0), eventSummary, appendMessage(nil, summaryValue, val))
}

// ---------------------------------------------------------------------------- decoding

// fields calls f for each field of the message b, with the field's raw value: the varint or
// fixed value in u, the bytes of a length-delimited field in data.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, u uint64, data []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var u uint64
		var data []byte
		switch typ {
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			u = uint64(v)
		case protowire.Fixed64Type:
			u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, u, data); err != nil {
			return err
		}
	}
	return nil
}

var errWireType = errors.New("unexpected wire type")

func parseEvent(b []byte) (Event, error) {
	var ev Event
	err := fields(b, func(num protowire.Number, typ protowire.Type, u uint64, data []byte) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(u)
		case num == eventStep && typ == protowire.VarintType:
			ev.Step = int64(u)
		case num == eventFileVersion && typ == protowire.BytesType:
			ev.FileVersion = string(data)
		case num == eventSummary && typ == protowire.BytesType:
			return fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
				if num == summaryValue && typ == protowire.BytesType {
					return parseValue(data, &ev)
				}
				return nil
			})
		case num <= eventSummary && num != 4:
			return fmt.Errorf("event field %d: %w %d", num, errWireType, typ)
		}
		return nil
	})
	return ev, err
}

func parseValue(b []byte, ev *Event) error {
	var tag string
	var simple *float32
	var plugin string
	var content []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, u uint64, data []byte) error {
		switch {
		case num == valueTag && typ == protowire.BytesType:
			tag = string(data)
		case num == valueSimpleValue && typ == protowire.Fixed32Type:
			v := math.Float32frombits(uint32(u))
			simple = &v
		case num == valueMetadata && typ == protowire.BytesType:
			return fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
				if num != metadataPluginData || typ != protowire.BytesType {
					return nil
				}
				return fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
					switch {
					case num == pluginName && typ == protowire.BytesType:
						plugin = string(data)
					case num == pluginContent && typ == protowire.BytesType:
						content = data
					}
					return nil
				})
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if simple != nil {
		ev.Scalars = append(ev.Scalars, Scalar{Tag: tag, Value: *simple})
	}
	if plugin == hparamsPlugin && tag == HParamsTag {
		return parseHParams(content, ev)
	}
	return nil
}

func parseHParams(b []byte, ev *Event) error {
	ev.HParams = map[string]any{}
	return fields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		if num != hparamsSessionStartInfo || typ != protowire.BytesType {
			return nil
		}
		return fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
			switch {
			case num == startInfoGroupName && typ == protowire.BytesType:
				ev.GroupName = string(data)
			case num == startInfoHParams && typ == protowire.BytesType:
				var key string
				var val any
				err := fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
					switch {
					case num == mapKey && typ == protowire.BytesType:
						key = string(data)
					case num == mapValue && typ == protowire.BytesType:
						return fields(data, func(num protowire.Number, typ protowire.Type, u uint64, data []byte) error {
							switch {
							case num == pbValueNumber && typ == protowire.Fixed64Type:
								val = math.Float64frombits(u)
							case num == pbValueString && typ == protowire.BytesType:
								val = string(data)
							case num == pbValueBool && typ == protowire.VarintType:
								val = u != 0
							}
							return nil
						})
					}
					return nil
				})
				if err != nil {
					return err
				}
				ev.HParams[key] = val
			}
			return nil
		})
	})
}
