package models_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/muonml/muon/models"
)

func TestDescValidate(t *testing.T) {
	tests := []struct {
		name string
		d    models.Desc
		want string // substring of the error; "" for valid
	}{
		{"softmax", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3}, ""},
		{"softmax with its head", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3, Head: models.SoftmaxHead}, ""},
		{"softmax labels", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 2, Labels: []string{"a", "b"}}, ""},
		{"linear", models.Desc{Kind: models.Linear, Inputs: 4}, ""},
		{"mlp", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{8, 8}, Head: models.SquaredHead, Outputs: 3}, ""},
		{"cnn", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{4, 8}, Classes: 10}, ""},
		{"cnn inputs given", models.Desc{Kind: models.CNN, Inputs: 192, Width: 8, Height: 8, Channels: 3, Filters: []int{4}, Classes: 2}, ""},

		{"no kind", models.Desc{Inputs: 4, Classes: 3}, "kind is required"},
		{"unknown kind", models.Desc{Kind: "svm", Inputs: 4, Classes: 3}, `unknown kind "svm"`},
		{"no inputs", models.Desc{Kind: models.Softmax, Classes: 3}, "inputs = 0"},
		{"negative inputs", models.Desc{Kind: models.Linear, Inputs: -1}, "inputs = -1"},
		{"huge inputs", models.Desc{Kind: models.Linear, Inputs: models.MaxDim + 1}, "inputs = 1048577"},
		{"one class", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 1}, "classes = 1"},
		{"softmax with outputs", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3, Outputs: 2}, "outputs = 2"},
		{"softmax hidden", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3, Hidden: []int{3}}, "hidden must be empty"},
		{"softmax activation", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3, Activation: models.ReLU}, "activation must be empty"},
		{"linear softmax head", models.Desc{Kind: models.Linear, Inputs: 4, Head: models.SoftmaxHead}, "head must be empty"},
		{"linear classes", models.Desc{Kind: models.Linear, Inputs: 4, Classes: 2}, "classes and labels"},
		{"labels mismatch", models.Desc{Kind: models.Softmax, Inputs: 4, Classes: 3, Labels: []string{"a"}}, "1 labels for 3 classes"},
		{"mlp no hidden", models.Desc{Kind: models.MLP, Inputs: 4, Head: models.SoftmaxHead, Classes: 3}, "hidden needs at least one"},
		{"mlp no head", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3}, Classes: 3}, "head is required"},
		{"mlp bad head", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3}, Head: "hinge"}, `unknown head "hinge"`},
		{"mlp bad activation", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3}, Head: models.SquaredHead, Activation: "gelu"}, `unknown activation "gelu"`},
		{"mlp zero width", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3, 0}, Head: models.SquaredHead}, "hidden[1] = 0"},
		{"mlp image fields", models.Desc{Kind: models.MLP, Inputs: 4, Hidden: []int{3}, Head: models.SquaredHead, Width: 2}, "are for kind cnn"},
		{"too many parameters", models.Desc{Kind: models.MLP, Inputs: models.MaxDim, Hidden: []int{models.MaxDim}, Head: models.SquaredHead}, "more than"},
		{"cnn no filters", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Classes: 10}, "filters needs at least one"},
		{"cnn no size", models.Desc{Kind: models.CNN, Filters: []int{4}, Classes: 10}, "image 0×0"},
		{"cnn too small", models.Desc{Kind: models.CNN, Width: 8, Height: 3, Filters: []int{4, 4}, Classes: 10}, "too small for 2 poolings"},
		{"cnn wrong inputs", models.Desc{Kind: models.CNN, Inputs: 63, Width: 8, Height: 8, Filters: []int{4}, Classes: 10}, "inputs = 63"},
		{"cnn zero filter", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{0}, Classes: 10}, "filters[0] = 0"},
		{"cnn negative channels", models.Desc{Kind: models.CNN, Width: 8, Height: 8, Channels: -1, Filters: []int{2}, Classes: 10}, "channels = -1"},
		{"cnn huge image", models.Desc{Kind: models.CNN, Width: 1 << 20, Height: 8, Filters: []int{2}, Classes: 10}, "image 1048576×8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, models.ErrDesc) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrDesc containing %q", err, tt.want)
			}
			if _, err := models.New(tt.d, 1); !errors.Is(err, models.ErrDesc) {
				t.Errorf("New() error = %v, want ErrDesc", err)
			}
		})
	}
}

func TestDescDefaults(t *testing.T) {
	tests := []struct {
		d    models.Desc
		want models.Desc
	}{
		{models.Desc{Kind: models.Linear, Inputs: 3}, models.Desc{Kind: models.Linear, Inputs: 3, Outputs: 1}},
		{models.Desc{Kind: models.Softmax, Inputs: 3, Classes: 2, Head: models.SoftmaxHead}, models.Desc{Kind: models.Softmax, Inputs: 3, Classes: 2}},
		{
			models.Desc{Kind: models.MLP, Inputs: 3, Hidden: []int{2}, Head: models.SquaredHead},
			models.Desc{Kind: models.MLP, Inputs: 3, Hidden: []int{2}, Activation: models.ReLU, Head: models.SquaredHead, Outputs: 1},
		},
		{
			models.Desc{Kind: models.CNN, Width: 4, Height: 2, Filters: []int{3}, Classes: 2},
			models.Desc{Kind: models.CNN, Inputs: 8, Width: 4, Height: 2, Channels: 1, Filters: []int{3}, Activation: models.ReLU, Head: models.SoftmaxHead, Classes: 2},
		},
	}
	for _, tt := range tests {
		m, err := models.New(tt.d, 1)
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.d, err)
		}
		if got := m.Desc(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("New(%+v).Desc() = %+v, want %+v", tt.d, got, tt.want)
		}
	}
}

func TestDescJSONRoundTrip(t *testing.T) {
	descs := []models.Desc{
		{Kind: models.Softmax, Inputs: 64, Classes: 10, Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{Kind: models.Linear, Inputs: 24, Outputs: 2},
		{Kind: models.MLP, Inputs: 64, Hidden: []int{100, 50}, Activation: models.Tanh, Head: models.SoftmaxHead, Classes: 10},
		{Kind: models.CNN, Inputs: 64, Width: 8, Height: 8, Channels: 1, Filters: []int{8, 16}, Hidden: []int{32}, Activation: models.ReLU, Head: models.SoftmaxHead, Classes: 6},
	}
	for _, d := range descs {
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back models.Desc
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Errorf("JSON round trip of %+v gave %+v (%s)", d, back, data)
		}
		m, err := models.New(back, 1)
		if err != nil {
			t.Fatal(err)
		}
		// A model's own descriptor also survives the trip.
		data, _ = json.Marshal(m.Desc())
		var again models.Desc
		if err := json.Unmarshal(data, &again); err != nil || !reflect.DeepEqual(again, m.Desc()) {
			t.Errorf("JSON round trip of %+v gave %+v, %v", m.Desc(), again, err)
		}
	}
	data, _ := json.Marshal(models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8}, Classes: 10})
	if want := `{"kind":"cnn","classes":10,"width":8,"height":8,"filters":[8]}`; string(data) != want {
		t.Errorf("JSON = %s, want %s", data, want)
	}
}

func TestNumParams(t *testing.T) {
	tests := []struct {
		d    models.Desc
		want int
	}{
		{models.Desc{Kind: models.Softmax, Inputs: 64, Classes: 10}, 65 * 10},
		{models.Desc{Kind: models.Linear, Inputs: 3, Outputs: 2}, 4 * 2},
		{models.Desc{Kind: models.MLP, Inputs: 64, Hidden: []int{100}, Head: models.SoftmaxHead, Classes: 10}, 65*100 + 101*10},
		// conv 1→8: 10·8; pool to 4×4×8 = 128; dense 129·10.
		{models.Desc{Kind: models.CNN, Width: 8, Height: 8, Filters: []int{8}, Classes: 10}, 10*8 + 129*10},
		// 7×5 → conv(2) → pool 3×2 → conv(3) → pool 1×1×3 → dense 4·2.
		{models.Desc{Kind: models.CNN, Width: 7, Height: 5, Filters: []int{2, 3}, Classes: 2}, 10*2 + 19*3 + 4*2},
	}
	for _, tt := range tests {
		n, err := models.NumParams(tt.d)
		if err != nil || n != tt.want {
			t.Errorf("NumParams(%+v) = %d, %v, want %d", tt.d, n, err, tt.want)
		}
		m, err := models.New(tt.d, 1)
		if err != nil || m.NumParams() != tt.want || len(m.Params()) != tt.want {
			t.Errorf("New(%+v): %d parameters, %v, want %d", tt.d, m.NumParams(), err, tt.want)
		}
	}
}

func TestFromParams(t *testing.T) {
	d := models.Desc{Kind: models.MLP, Inputs: 3, Hidden: []int{4}, Head: models.SoftmaxHead, Classes: 2}
	m, err := models.New(d, 7)
	if err != nil {
		t.Fatal(err)
	}
	p := slices.Clone(m.Params())
	back, err := models.FromParams(m.Desc(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Params(), m.Params()) || !reflect.DeepEqual(back.Desc(), m.Desc()) {
		t.Fatal("FromParams(Desc, Params) differs from the model")
	}
	p[0] = 42 // FromParams copied
	if back.Params()[0] == 42 {
		t.Error("FromParams kept the caller's slice")
	}

	tests := []struct {
		name   string
		params []float64
		want   error
	}{
		{"short", make([]float64, m.NumParams()-1), models.ErrParams},
		{"long", make([]float64, m.NumParams()+1), models.ErrParams},
		{"nil", nil, models.ErrParams},
		{"NaN", append(make([]float64, m.NumParams()-1), math.NaN()), models.ErrParams},
		{"Inf", append([]float64{math.Inf(-1)}, make([]float64, m.NumParams()-1)...), models.ErrParams},
	}
	for _, tt := range tests {
		if _, err := models.FromParams(d, tt.params); !errors.Is(err, tt.want) {
			t.Errorf("%s: FromParams error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := models.FromParams(models.Desc{Kind: models.MLP}, nil); !errors.Is(err, models.ErrDesc) {
		t.Errorf("FromParams with a bad descriptor: %v, want ErrDesc", err)
	}
}

func TestTensors(t *testing.T) {
	m, err := models.New(models.Desc{Kind: models.CNN, Width: 6, Height: 4, Channels: 2, Filters: []int{3}, Hidden: []int{5}, Classes: 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		shape []int
		bias  bool
	}{
		{"conv0.weight", []int{3, 3, 2, 3}, false},
		{"conv0.bias", []int{3}, true},
		{"dense0.weight", []int{3 * 2 * 3, 5}, false},
		{"dense0.bias", []int{5}, true},
		{"output.weight", []int{5, 4}, false},
		{"output.bias", []int{4}, true},
	}
	ts := m.Tensors()
	if len(ts) != len(want) {
		t.Fatalf("%d tensors, want %d", len(ts), len(want))
	}
	off := 0
	for i, tt := range ts {
		w := want[i]
		if tt.Name != w.name || !slices.Equal(tt.Shape, w.shape) || tt.Bias != w.bias || tt.Offset != off {
			t.Errorf("tensor %d = %s %v bias=%v at %d, want %s %v bias=%v at %d", i, tt.Name, tt.Shape, tt.Bias, tt.Offset, w.name, w.shape, w.bias, off)
		}
		off += len(tt.Values)
		tt.Values[0] = float64(i + 100)
		if m.Params()[tt.Offset] != float64(i+100) {
			t.Errorf("tensor %s does not alias the parameters", tt.Name)
		}
	}
	if off != m.NumParams() {
		t.Errorf("tensors cover %d of %d parameters", off, m.NumParams())
	}
}

func TestClone(t *testing.T) {
	m, err := models.New(models.Desc{Kind: models.MLP, Inputs: 3, Hidden: []int{4}, Head: models.SquaredHead}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone()
	if !slices.Equal(c.Params(), m.Params()) {
		t.Fatal("clone differs")
	}
	c.Params()[0]++
	c.Tensors()[1].Values[0]++
	if c.Params()[0] == m.Params()[0] || c.Tensors()[1].Values[0] == m.Tensors()[1].Values[0] {
		t.Error("clone shares parameters with the original")
	}
}

// FuzzDesc feeds descriptors decoded from arbitrary JSON, as a snapshot
// manifest might hold, to Validate, NumParams and FromParams: none may
// panic, and a valid descriptor stays within MaxParams.
func FuzzDesc(f *testing.F) {
	for _, s := range []string{
		`{"kind":"softmax","inputs":64,"classes":10}`,
		`{"kind":"mlp","inputs":4,"hidden":[8,8],"head":"squared","outputs":3}`,
		`{"kind":"cnn","width":8,"height":8,"filters":[8,16],"hidden":[32],"classes":10}`,
		`{"kind":"cnn","width":4096,"height":4096,"channels":3,"filters":[1048576],"classes":2}`,
		`{"kind":"linear","inputs":-5}`,
		`{"kind":"mlp","inputs":1048576,"hidden":[1048576],"head":"softmax","classes":1048576}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d models.Desc
		if json.Unmarshal(data, &d) != nil {
			return
		}
		n, err := models.NumParams(d)
		if (err == nil) != (d.Validate() == nil) {
			t.Fatalf("NumParams error %v, Validate error %v", err, d.Validate())
		}
		if err != nil {
			if !errors.Is(err, models.ErrDesc) {
				t.Fatalf("error %v does not wrap ErrDesc", err)
			}
			return
		}
		if n < 1 || n > models.MaxParams {
			t.Fatalf("valid descriptor with %d parameters", n)
		}
		// One value short: the layers are built but no parameters kept.
		if _, err := models.FromParams(d, make([]float64, min(n-1, 1<<16))); !errors.Is(err, models.ErrParams) {
			t.Fatalf("FromParams with too few values: %v", err)
		}
	})
}
