package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// s3Storage keeps backups in an S3 bucket, or a bucket of any S3-compatible store (MinIO, versitygw, ...).
type s3Storage struct {
	client   *s3.Client
	bucket   string
	key      string
	endpoint string // "" for AWS itself
}

// Uploads of up to singlePutMax bytes are one PUT; larger ones are multipart uploads of parts of at
// least minPartSize bytes, each read from the file as it is sent.
const (
	singlePutMax = 64 << 20
	minPartSize  = 64 << 20
	maxParts     = 10000
)

func newS3(c *S3Config) (*s3Storage, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		// Checksums only where an operation requires them: the SDK's default CRC checksums upset some
		// S3-compatible stores.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	// Keys in the file are used only as a pair; otherwise the SDK's usual chain finds credentials
	// (AWS_ACCESS_KEY_ID and friends, AWS_PROFILE and the shared files, web identity, container and EC2 roles).
	if c.AccessKeyID != "" && c.SecretAccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		// S3-compatible stores take any region; AWS itself redirects to the bucket's.
		awsCfg.Region = "us-east-1"
	}
	endpoint := c.Endpoint
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = c.ForcePathStyle
	})
	if endpoint == "" {
		// With no endpoint in the file, the SDK takes one from the environment, if set there.
		endpoint = cmp.Or(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	}
	if strings.Contains(endpoint, "amazonaws.com") {
		endpoint = ""
	}
	return &s3Storage{client: client, bucket: c.Bucket, key: c.Path, endpoint: strings.TrimSuffix(endpoint, "/")}, nil
}

func (s *s3Storage) Name() string { return s.key }

func (s *s3Storage) Destination(name string) string {
	if s.endpoint == "" {
		return "s3://" + s.bucket + "/" + name
	}
	return s.endpoint + "/" + s.bucket + "/" + name
}

func (s *s3Storage) Upload(ctx context.Context, name string, f *os.File, size int64, id string) error {
	meta := map[string]string{IDMetadataKey: id}
	if size <= singlePutMax {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &name, Body: io.NewSectionReader(f, 0, size), ContentLength: aws.Int64(size),
			ContentType: aws.String("application/octet-stream"), Metadata: meta,
		})
		return s.describe(err, "upload to", name)
	}
	return s.uploadParts(ctx, name, f, size, meta)
}

// uploadParts sends a large file as a multipart upload, one part at a time, each read from the file as it
// is sent: memory stays the same whatever the size.
func (s *s3Storage) uploadParts(ctx context.Context, name string, f *os.File, size int64, meta map[string]string) error {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &name, ContentType: aws.String("application/octet-stream"), Metadata: meta,
	})
	if err != nil {
		return s.describe(err, "upload to", name)
	}
	partSize := max(int64(minPartSize), (size+maxParts-1)/maxParts)
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+partSize, n+1 {
		length := min(partSize, size-off)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: &name, UploadId: created.UploadId, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(f, off, length), ContentLength: aws.Int64(length),
		})
		if err != nil {
			s.abort(name, created.UploadId)
			return s.describe(err, fmt.Sprintf("upload part %d to", n), name)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &name, UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		s.abort(name, created.UploadId)
		return s.describe(err, "complete upload to", name)
	}
	return nil
}

// abort gives up a multipart upload, so that its parts do not linger (and cost) in the bucket.
func (s *s3Storage) abort(name string, uploadID *string) {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &name, UploadId: uploadID})
}

func (s *s3Storage) ID(ctx context.Context, name string) (string, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &name})
	if err != nil {
		if notFound(err) {
			return "", ErrNoID
		}
		return "", s.describe(err, "read the backup ID of", name)
	}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, IDMetadataKey) {
			return v, nil
		}
	}
	return "", ErrNoID
}

func (s *s3Storage) Download(ctx context.Context, name string, w io.Writer) (int64, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &name})
	if err != nil {
		return 0, s.describe(err, "download from", name)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return n, fmt.Errorf("download from %s: %w", s.Destination(name), err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return n, fmt.Errorf("download from %s: got %d bytes of %d", s.Destination(name), n, *out.ContentLength)
	}
	return n, nil
}

// describe names the object and the store in an error from the SDK, and says in words what the usual
// failures mean.
func (s *s3Storage) describe(err error, what, name string) error {
	if err == nil {
		return nil
	}
	hint := ""
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusForbidden:
			hint = " (check the access key and secret, and that they may use this bucket)"
		case http.StatusNotFound:
			hint = " (does the bucket exist?)"
		}
	}
	return fmt.Errorf("%s %s: %w%s", what, s.Destination(name), err, hint)
}

func notFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	if errors.As(err, &nf) || errors.As(err, &nk) {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && !strings.Contains(err.Error(), "NoSuchBucket")
}
