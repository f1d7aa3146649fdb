#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct { const uint8_t *p; size_t n; int mode; uint64_t s; pthread_barrier_t *b; int passes; double *t; size_t resident; int tid;} arg;
/* mode 0: normal loads; mode 1: prefetchnta 1024 ahead on the streamed part; mode 2: T0 prefetch ahead */
static uint64_t rd(const uint8_t*p,size_t n,int nta){
  __m256i a=_mm256_setzero_si256(),b=a;
  for(size_t i=0;i+64<=n;i+=64){
    if(nta==1)_mm_prefetch((const char*)p+i+1024,_MM_HINT_NTA);
    if(nta==2&&i>=512)_mm_clflushopt((void*)(p+i-512));
    a=_mm256_xor_si256(a,_mm256_load_si256((const __m256i*)(p+i)));
    b=_mm256_xor_si256(b,_mm256_load_si256((const __m256i*)(p+i+32)));}
  a=_mm256_xor_si256(a,b);return (uint64_t)_mm256_extract_epi64(a,0);}
static void*run(void*v){arg*a=v;
  for(int k=0;k<a->passes;k++){pthread_barrier_wait(a->b);double t0=now();
    /* each thread: its resident slice first (normal), then its streamed slice */
    size_t r=a->resident/2, half=a->n/2;
    const uint8_t*base=a->p;
    /* resident region: [0,resident) split across threads; stream region [resident,n) split */
    a->s+=rd(base+a->tid*r,r,0);
    size_t sn=(a->n-a->resident)/2; sn&=~(size_t)63;
    a->s+=rd(base+a->resident+a->tid*sn,sn,a->mode);
    (void)half;
    pthread_barrier_wait(a->b); if(a->tid==0)a->t[k]=now()-t0;}
  return 0;}
int main(int c,char**v){size_t n=(size_t)atof(v[1])*1e6; n&=~((size_t)(2<<20)-1); size_t res=(size_t)atof(v[2])*1e6; res&=~(size_t)127;
 int passes=atoi(v[3]);
 uint8_t*p=aligned_alloc(2<<20,n);madvise(p,n,MADV_HUGEPAGE);for(size_t i=0;i<n;i++)p[i]=i*2654435761u>>24;
 pthread_barrier_t b;pthread_barrier_init(&b,0,2);
 for(int round=0;round<atoi(v[4]);round++) for(int mode=0;mode<3;mode+=2){
  double t[256];arg a[2];pthread_t th[2];
  for(int i=0;i<2;i++){a[i]=(arg){p,n,mode,0,&b,passes,t,res,i};pthread_create(&th[i],0,run,&a[i]);}
  for(int i=0;i<2;i++)pthread_join(th[i],0);
  double best=1e9,sum=0;for(int k=2;k<passes;k++){if(t[k]<best)best=t[k];sum+=t[k];}
  printf("round %d mode %d: best %.2f GB/s mean %.2f GB/s\n",round,mode,n/best*1e-9,n/(sum/(passes-2))*1e-9);}
 return 0;}
